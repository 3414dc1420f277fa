// Tests share one libtorch and two cores; run them one after another.
[assembly: DoNotParallelize]

namespace Microsoft.ML.Apd.Tests;

[TestClass]
public static class TestAssembly
{
    /// <summary>Some tests call TorchSharp before any Microsoft.ML.Apd type, as an application of its own may.</summary>
    [AssemblyInitialize]
    public static void PrepareTorchSharp(TestContext context) => context.WriteLine(TorchSharpLoader.EnsureLoadable() ?? "TorchSharp loads as it is.");
}
