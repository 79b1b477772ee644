using Flotilla.Fleet.Loading;

namespace Flotilla.Fleet.Tests;

public sealed class SmokeTests
{
    [Fact]
    public void Empty_file_is_valid() => FleetLoader.Parse("", "fleet.yaml").IsValid.ShouldBeTrue();
}
