using Flotilla.Guardrails.Secrets;

namespace Flotilla.Guardrails.Tests.Secrets;

public sealed class SecretDetectorTests
{
    [Fact]
    public void Text_without_credentials_yields_no_findings_and_redacts_to_the_same_instance()
    {
        const string text = "The router tried gpt-4o-mini first, then claude-haiku.";

        SecretDetector.Find(text).ShouldBeEmpty();
        SecretDetector.Redact(text).ShouldBeSameAs(text);
    }

    [Fact]
    public void Findings_are_ordered_and_do_not_overlap()
    {
        var text = "a=AKIAIOSFODNN7EXAMPLE b=ghp_FAKE0123456789abcdefghijklmnopqrstuv c=AKIAIOSFODNN7EXAMPLE";

        var findings = SecretDetector.Find(text);

        findings.Select(f => f.Kind).ShouldBe(["aws-access-key-id", "github-token", "aws-access-key-id"]);
        findings.Zip(findings.Skip(1)).ShouldAllBe(p => p.First.End <= p.Second.Start);
    }

    [Theory]
    [InlineData("123e4567-e89b-12d3-a456-426614174000")]                       // UUID
    [InlineData("3f9a2c1e8b7d6f5a4e3d2c1b0a9f8e7d6c5b4a39")]                   // git SHA
    [InlineData("4d967a30111bf29f0eba01c448b375c1629b2fed01cdfcc3aed91f1b57d5dd5e")] // SHA-256
    [InlineData("GuardrailPipelineBuilderFactoryTests2")]                     // identifier
    [InlineData("src/Flotilla2/Gateway/Routing/VirtualModelRouter")]          // path
    [InlineData("VGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcyBvdmVyIHRoZSBsYXp5IGRvZw==")] // base64 of a sentence
    [InlineData("sha512-Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG9mcmVk")] // integrity hash
    [InlineData("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk")]
    public void Random_looking_but_harmless_tokens_are_not_high_entropy_secrets(string token)
    {
        SecretDetector.Find($"value {token} here").ShouldBeEmpty();
    }

    [Theory]
    [InlineData("k8Jd72HsQp0Lm3Nz9XcV5bR1tYw4")]
    [InlineData("Qm9Xk2Lp7Rz4Tn8Vb3Wc6Yd1Fg5Hj0Ks")]
    public void Random_tokens_are_high_entropy_secrets(string token)
    {
        SecretDetector.Find($"value {token} here").ShouldHaveSingleItem().Kind.ShouldBe(SecretDetector.HighEntropyKind);
    }

    [Theory]
    [InlineData("api_key: ${env:OPENAI_API_KEY}")]
    [InlineData("password: ${{ secrets.DB_PASSWORD }}")]
    [InlineData("client_secret=<your-client-secret-here>")]
    [InlineData("password: ********")]
    [InlineData("const secretName = process.env.SECRET_NAME;")]
    [InlineData("password_hash = bcrypt(password)")]
    [InlineData("password: required")]
    [InlineData("postgres://user:${DB_PASSWORD}@db:5432/app")]
    [InlineData("Authorization: Bearer YOUR_TOKEN_HERE_PLEASE_REPLACE")]
    [InlineData("secretName: my-app-secret-production-v2")]
    [InlineData("password: [REDACTED:password-assignment]")]
    public void Placeholders_references_and_masks_are_not_secrets(string text)
    {
        SecretDetector.Find(text).ShouldBeEmpty();
    }

    [Fact]
    public void Redacting_twice_changes_nothing_more()
    {
        var once = SecretDetector.Redact("DB_PASSWORD=\"correct-horse-42\" and AKIAIOSFODNN7EXAMPLE");

        SecretDetector.Redact(once).ShouldBe(once);
        once.ShouldBe("DB_PASSWORD=\"[REDACTED:password-assignment]\" and [REDACTED:aws-access-key-id]");
    }

    [Fact]
    public void A_connection_string_keeps_everything_but_the_password()
    {
        SecretDetector.Redact("postgres://app:S3cr3t-Pa55@db.internal:5432/app")
            .ShouldBe("postgres://app:[REDACTED:connection-string]@db.internal:5432/app");
    }

    [Fact]
    public void A_private_key_without_its_end_line_is_still_a_private_key()
    {
        var text = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEoAoGCCqGSM49\nAwEHoUQDQgAE";

        SecretDetector.Find(text).ShouldHaveSingleItem().ShouldBe(new TextFinding(0, text.Length, "private-key"));
    }

    [Fact]
    public void Every_kind_is_listed()
    {
        SecretDetector.Kinds.ShouldContain("aws-access-key-id");
        SecretDetector.Kinds.ShouldContain(SecretDetector.HighEntropyKind);
        SecretDetector.Kinds.ShouldBeUnique();
    }
}
