using System.Runtime.InteropServices;
using Microsoft.ML.Apd.Native;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Tests.Foundation;

/// <summary>TorchSharp's native library loads on older Linux through a fixed copy in the user's cache.</summary>
[TestClass]
public sealed class TorchSharpLoaderTests
{
    /// <summary>The library as the TorchSharp package ships it (the build leaves it unchanged).</summary>
    private static string Original => Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");

    private static bool SystemLibStdCxxIsOlderThanGcc13 =>
        NativeLibrary.TryLoad("libstdc++.so.6", out var h) && !NativeLibrary.TryGetExport(h, "_ZSt21ios_base_library_initv", out _);

    [TestMethod]
    public void WeakenMarksExactlyTheGlibcxx3432NeedWeakOnce()
    {
        if (!File.Exists(Original)) Assert.Inconclusive($"No {Original} (not Linux x64).");
        byte[] original = File.ReadAllBytes(Original);
        byte[] copy = (byte[])original.Clone();
        Assert.AreEqual(1, ElfVersionNeeds.Weaken(copy, "GLIBCXX_3.4.32"));
        Assert.AreEqual(0, ElfVersionNeeds.Weaken(copy, "GLIBCXX_3.4.32"), "idempotent");
        var changed = Enumerable.Range(0, original.Length).Where(i => original[i] != copy[i]).ToArray();
        Assert.HasCount(1, changed, "one flag byte (vna_flags |= VER_FLG_WEAK)");
        Assert.AreEqual(0x2, copy[changed[0]] ^ original[changed[0]]);
        Assert.AreEqual(-1, ElfVersionNeeds.Weaken(new byte[100], "GLIBCXX_3.4.32"), "not an ELF file");
    }

    /// <summary>A notebook host runs TorchSharp.dll from the NuGet package folder and gives the runtime no search path
    /// for libtorch: the loader finds libtorch's own package there, before any libtorch the system has by name.</summary>
    [TestMethod]
    public void LibTorchIsFoundInItsPackageBesideTorchSharps()
    {
        string packages = Directory.CreateTempSubdirectory("apd-packages-").FullName;
        try
        {
            string torchSharp = Path.Combine(packages, "torchsharp", "0.107.0", "lib", "net8.0", "TorchSharp.dll");
            string libtorch = Path.Combine(packages, "libtorch-cpu-linux-x64", "2.10.0", "runtimes", "linux-x64", "native", "libtorch.so");
            foreach (var file in new[] { torchSharp, libtorch, libtorch.Replace("2.10.0", "2.9.0") })
            {
                Directory.CreateDirectory(Path.GetDirectoryName(file)!);
                File.WriteAllBytes(file, []);
            }
            Assert.AreEqual(libtorch, TorchSharpLoader.PackagedLibTorch(torchSharp, "2.10.0"));
            Assert.IsNull(TorchSharpLoader.PackagedLibTorch(torchSharp, "2.11.0"), "only the version TorchSharp was built for");
        }
        finally
        {
            Directory.Delete(packages, recursive: true);
        }
    }

    [TestMethod]
    public void OnOlderLinuxTorchSharpRunsFromTheFixedCopyInTheUserCache()
    {
        if (!OperatingSystem.IsLinux() || !SystemLibStdCxxIsOlderThanGcc13)
        {
            Assert.IsNull(TorchSharpLoader.EnsureLoadable(), "nothing to do on Windows, macOS and Linux with GCC 13's libstdc++");
            return;
        }
        string outcome = TorchSharpLoader.EnsureLoadable()!;
        Console.WriteLine(outcome);
        string copy = outcome[(outcome.LastIndexOf(": ", StringComparison.Ordinal) + 2)..^1];
        StringAssert.Contains(copy, Path.Combine("Microsoft.ML.Apd", "libLibTorchSharp"));
        Assert.IsFalse(copy.Contains(Path.Combine(".nuget", "packages"), StringComparison.Ordinal), "never the NuGet cache");
        Assert.AreEqual(0, ElfVersionNeeds.Weaken(File.ReadAllBytes(copy), "GLIBCXX_3.4.32"), "the copy's need is weak");
        Assert.AreEqual(1, ElfVersionNeeds.Weaken(File.ReadAllBytes(Original), "GLIBCXX_3.4.32"), "the shipped library is untouched");
        using var scope = NewDisposeScope();
        Assert.AreEqual(6f, ones(3).mul(2).sum().item<float>());
        Assert.IsTrue(File.ReadAllText("/proc/self/maps").Contains(copy, StringComparison.Ordinal), "TorchSharp runs the copy");
    }

    [TestMethod]
    public void WritersStartingTogetherLeaveOneWholeCopyAndNoTemporaryFiles()
    {
        string cache = Directory.CreateTempSubdirectory("apd-cache-").FullName;
        try
        {
            byte[] bytes = new byte[1 << 20];
            new Random(1).NextBytes(bytes);
            using var start = new Barrier(8);
            var paths = Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
            {
                start.SignalAndWait();
                return TorchSharpLoader.WriteToCache(cache, "key", bytes);
            })).ToArray();
            Task.WaitAll(paths);
            Assert.AreEqual(1, paths.Select(p => p.Result).Distinct().Count());
            CollectionAssert.AreEqual(bytes, File.ReadAllBytes(paths[0].Result));
            Assert.HasCount(1, Directory.GetFiles(Path.GetDirectoryName(paths[0].Result)!), "no temporary files left");

            File.WriteAllBytes(paths[0].Result, new byte[10]); // damaged: written again
            CollectionAssert.AreEqual(bytes, File.ReadAllBytes(TorchSharpLoader.WriteToCache(cache, "key", bytes)));
        }
        finally
        {
            Directory.Delete(cache, recursive: true);
        }
    }
}
