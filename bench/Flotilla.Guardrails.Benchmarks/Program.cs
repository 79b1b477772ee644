using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Flotilla.Guardrails.Benchmarks -- --filter '*' --job short
BenchmarkSwitcher.FromAssembly(typeof(Flotilla.Guardrails.Benchmarks.Messages).Assembly).Run(args);
