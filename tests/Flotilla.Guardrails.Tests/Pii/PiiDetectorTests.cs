using Flotilla.Guardrails.Pii;

namespace Flotilla.Guardrails.Tests.Pii;

public sealed class PiiDetectorTests
{
    [Theory]
    [InlineData("4111 1111 1111 1112")]   // Luhn fails
    [InlineData("1234 5678 9012 3456")]   // no issuer, Luhn fails
    [InlineData("1716000000000")]         // epoch milliseconds
    [InlineData("4111 11 1111 111111")]   // not a card grouping
    [InlineData("order 4111111111111111234567")] // too long
    public void Numbers_that_are_not_valid_cards_are_not_cards(string text)
    {
        PiiDetector.Find(text).ShouldNotContain(f => f.Kind == PiiDetector.CreditCard);
    }

    [Theory]
    [InlineData("4111 1111 1111 1111")]
    [InlineData("5555-5555-5555-4444")]
    [InlineData("378282246310005")]
    [InlineData("2223 0031 2200 3222")]  // Mastercard 2-series
    [InlineData("3530 1113 3330 0000")]  // JCB
    public void Valid_test_cards_are_cards(string number)
    {
        PiiDetector.Find($"card {number}.").ShouldHaveSingleItem().Kind.ShouldBe(PiiDetector.CreditCard);
    }

    [Theory]
    [InlineData("GB82 WEST 1234 5698 7654 33", false)]  // check digits wrong
    [InlineData("GB82 WEST 1234 5698 7654", false)]     // too short for GB
    [InlineData("XX82 WEST 1234 5698 7654 32", false)]  // no such country
    [InlineData("GB82WEST12345698765432", true)]
    [InlineData("CH93 0076 2011 6238 5295 7", true)]
    public void Ibans_must_have_the_country_length_and_valid_check_digits(string text, bool expected)
    {
        PiiDetector.Find(text).Any(f => f.Kind == PiiDetector.Iban).ShouldBe(expected);
    }

    [Theory]
    [InlineData("000-12-3456", false)]
    [InlineData("666-12-3456", false)]
    [InlineData("912-34-5678", false)]
    [InlineData("123-00-4567", false)]
    [InlineData("123-45-0000", false)]
    [InlineData("123-45-6789", true)]
    public void Ssns_in_never_issued_ranges_are_ignored(string text, bool expected)
    {
        PiiDetector.Find(text).Any(f => f.Kind == PiiDetector.UsSsn).ShouldBe(expected);
    }

    [Theory]
    [InlineData("QQ 12 34 56 C", false)]  // Q never a prefix letter
    [InlineData("GB 12 34 56 A", false)]  // GB never issued
    [InlineData("AB 12 34 56 E", false)]  // suffix only A-D
    [InlineData("AB 12 34 56 C", true)]
    public void National_insurance_numbers_follow_the_allocation_rules(string text, bool expected)
    {
        PiiDetector.Find(text).Any(f => f.Kind == PiiDetector.UkNino).ShouldBe(expected);
    }

    [Theory]
    [InlineData("127.0.0.1", false)]
    [InlineData("0.0.0.0", false)]
    [InlineData("10.0.0.0", false)]
    [InlineData("255.255.255.255", false)]
    [InlineData("224.0.0.251", false)]
    [InlineData("1.0.0.0", false)]
    [InlineData("10.0.19041.1", false)]
    [InlineData("v1.2.3.4", false)]
    [InlineData("256.1.1.1", false)]
    [InlineData("8.8.8.8", true)]
    [InlineData("192.168.1.23", true)]
    [InlineData("::1", false)]
    [InlineData("12:30:45", false)]
    [InlineData("00:1A:2B:3C:4D:5E", false)]
    [InlineData("std::vector", false)]
    [InlineData("2001:db8::1", true)]
    [InlineData("2001:0db8:85a3:0000:0000:8a2e:0370:7334", true)]
    [InlineData("::ffff:192.0.2.128", true)]
    public void Only_host_addresses_are_ip_addresses(string text, bool expected)
    {
        PiiDetector.Find($"at {text} now").Any(f => f.Kind == PiiDetector.IpAddress).ShouldBe(expected);
    }

    [Theory]
    [InlineData("2024-05-17")]
    [InlineData("17.05.2024")]
    [InlineData("10.0.401")]
    [InlineData("12:30:45")]
    [InlineData("v2.3.4")]
    [InlineData("+1 for this idea")]
    [InlineData("100-200-3000")]          // area code cannot start with 1
    [InlineData("@@ -12,7 +12,8 @@")]
    [InlineData("+1500000 tokens")]
    [InlineData("rows 100 200 3000")]
    public void Dates_versions_times_and_counts_are_not_phone_numbers(string text)
    {
        PiiDetector.Find(text).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("git@github.com:acme/flotilla.git")]
    [InlineData("icon@2x.png")]
    [InlineData("@types/node")]
    [InlineData("npm i lodash@4.17.21")]
    public void Remotes_assets_and_packages_are_not_emails(string text)
    {
        PiiDetector.Find(text).ShouldNotContain(f => f.Kind == PiiDetector.Email);
    }

    [Fact]
    public void Redaction_replaces_each_finding_by_its_kind()
    {
        PiiDetector.Redact("jane.doe@example.com called from +44 20 7946 0958")
            .ShouldBe("[REDACTED:email] called from [REDACTED:phone-number]");
    }

    [Fact]
    public void Luhn_check_matches_the_reference_examples()
    {
        PiiDetector.Luhn([7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]).ShouldBeTrue();
        PiiDetector.Luhn([7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 4]).ShouldBeFalse();
    }
}
