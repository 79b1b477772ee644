using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Flotilla.Benchmarks -- --filter '*'            (all; add --job short for a quick pass)
// dotnet run -c Release --project bench/Flotilla.Benchmarks -- --filter '*ChatRequest*' (one class)
BenchmarkSwitcher.FromAssembly(typeof(Flotilla.Benchmarks.BenchData).Assembly).Run(args);
