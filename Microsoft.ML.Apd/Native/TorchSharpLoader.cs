using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.ML.Apd.Native;
using Microsoft.ML.Runtime;
using TorchSharp;

namespace Microsoft.ML.Apd;

/// <summary>
/// Makes TorchSharp's native library load on Linux distributions whose libstdc++ predates GCC 13 (Debian 12,
/// Ubuntu 22.04), in every host: applications, test runners, notebooks (<c>#r "nuget: …"</c>), services.
/// </summary>
/// <remarks>
/// <para>TorchSharp 0.107's <c>libLibTorchSharp.so</c> asks for <c>GLIBCXX_3.4.32</c> (GCC 13's libstdc++) for one
/// symbol, <c>_ZSt21ios_base_library_initv</c>, that no relocation uses. Where the system libstdc++ lacks that
/// version, the dynamic loader refuses the library and TorchSharp reports that libtorch is missing. A copy with that
/// version need marked weak (<c>VER_FLG_WEAK</c>) loads and runs unchanged.</para>
/// <para>Microsoft.ML.Apd runs <see cref="EnsureLoadable"/> itself before anything else in it runs (a module
/// initializer), so a program that touches Microsoft.ML.Apd before TorchSharp needs nothing. Call it yourself first
/// only if your own code uses TorchSharp before any Microsoft.ML.Apd type.</para>
/// <para>What it does, once per process: nothing on Windows and macOS, nothing where the system libstdc++ exports that
/// symbol or the library's need is weak already. Otherwise it writes the fixed copy to the per-user cache
/// (<c>$XDG_CACHE_HOME</c>, else <c>~/.cache</c>, then <c>Microsoft.ML.Apd/libLibTorchSharp/&lt;SHA-256 of the
/// original&gt;/</c>; atomically, by rename, so processes starting together are safe; never into the NuGet cache or
/// the application's folder), loads the libtorch TorchSharp was built for (the one beside the original library or in
/// its package, before any found by name), then loads the copy. TorchSharp's
/// own lookup of <c>libLibTorchSharp.so</c> by name then finds the loaded copy (same soname). Trainers log the outcome
/// to <c>MLContext.Log</c>.</para>
/// </remarks>
public static class TorchSharpLoader
{
    private const string VersionName = "GLIBCXX_3.4.32";
    private const string SymbolOfThatVersion = "_ZSt21ios_base_library_initv";
    private const string LibraryFile = "libLibTorchSharp.so";

    private static readonly Lazy<string?> _outcome = new(Prepare, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>
    /// Makes <c>libLibTorchSharp.so</c> loadable in this process if it is not (see the remarks); runs once, later
    /// calls return the first call's result. Never throws.
    /// </summary>
    /// <returns>What was done, for a log; null when nothing was needed.</returns>
    public static string? EnsureLoadable() => _outcome.Value;

    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255", Justification = "Must run before this library's first call into TorchSharp, whichever public type a host touches first.")]
    internal static void RunBeforeTorchSharp() => EnsureLoadable();

    /// <summary>Writes the outcome (if anything was done) to MLContext.Log.</summary>
    internal static void Report(IHostEnvironment env)
    {
        if (EnsureLoadable() is not { } outcome) return;
        using var channel = env.Start(nameof(TorchSharpLoader));
        channel.Info(outcome);
    }

    private static string? Prepare()
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            if (SystemLibStdCxxHasVersion()) return null;
            var torchSharp = typeof(torch).Assembly;
            if (FindOriginal(torchSharp) is not { } original)
                return $"Microsoft.ML.Apd: the system libstdc++ lacks {VersionName} and {LibraryFile} was not found next to the application or TorchSharp; TorchSharp may fail to load.";

            byte[] elf = File.ReadAllBytes(original);
            string key = Convert.ToHexStringLower(SHA256.HashData(elf));
            int weakened = ElfVersionNeeds.Weaken(elf, VersionName);
            if (weakened == 0) return null; // no such need, or a copy fixed at build time
            if (weakened < 0) return $"Microsoft.ML.Apd: {original} is not a 64-bit little-endian ELF library with version needs; left as it is.";

            string copy = WriteToCache(UserCache(), key, elf);
            LoadLibTorch(torchSharp, original);
            NativeLibrary.Load(copy);
            return $"Microsoft.ML.Apd: the system libstdc++ lacks {VersionName}, which {original} asks for; loaded a copy that marks that need weak: {copy}.";
        }
        catch (Exception e)
        {
            return $"Microsoft.ML.Apd: could not prepare a loadable copy of {LibraryFile} ({e.GetType().Name}: {e.Message}); TorchSharp may fail to load. Set XDG_CACHE_HOME to a writable folder if the user's cache is not writable.";
        }
    }

    /// <summary>True when the libstdc++ this process loads exports GCC 13's symbol (so it has the version).</summary>
    private static bool SystemLibStdCxxHasVersion()
        => !NativeLibrary.TryLoad("libstdc++.so.6", out var libstdcxx) || NativeLibrary.TryGetExport(libstdcxx, SymbolOfThatVersion, out _);

    /// <summary>The library the runtime would try first: the host's native search folders, the application, TorchSharp's package.</summary>
    private static string? FindOriginal(Assembly torchSharp)
    {
        var folders = ((AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") as string) ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Append(AppContext.BaseDirectory)
            .Append(Path.GetDirectoryName(torchSharp.Location) ?? "")
            .Append(Path.Combine(TorchSharpPackageFolder(torchSharp.Location), "runtimes", "linux-x64", "native"));
        return folders.Select(f => Path.Combine(f, LibraryFile)).FirstOrDefault(File.Exists);
    }

    /// <summary>
    /// Loads the libtorch this TorchSharp was built for (and through it libtorch_cpu, libc10), so the copy's
    /// dependencies resolve by soname from the cache folder: the one beside the original library (applications), else
    /// the one in its package beside TorchSharp's (hosts that resolve NuGet packages themselves, such as notebooks, give
    /// the runtime no search path for it), and only then by name, as the runtime would. By name comes last because it
    /// can find another libtorch installed system-wide: Debian's libtorch-dev puts libtorch.so 1.13 in /usr/lib.
    /// </summary>
    private static void LoadLibTorch(Assembly torchSharp, string original)
    {
        string beside = Path.Combine(Path.GetDirectoryName(original) ?? "", "libtorch.so");
        if (File.Exists(beside)) { NativeLibrary.Load(beside); return; }
        string version = typeof(torch).GetField("libtorchPackageVersion", BindingFlags.NonPublic | BindingFlags.Static)
            ?.GetRawConstantValue() as string ?? "";
        string nugetVersion = version.EndsWith(".0", StringComparison.Ordinal) && version.Count(c => c == '.') == 3 ? version[..^2] : version;
        string? packaged = PackagedLibTorch(torchSharp.Location, nugetVersion);
        if (packaged is not null) { NativeLibrary.Load(packaged); return; }
        if (NativeLibrary.TryLoad("torch", torchSharp, null, out _)) return;
        throw new FileNotFoundException($"libtorch.so (libtorch {nugetVersion}) was found neither beside {original}, nor in a libtorch package beside TorchSharp's, nor by the runtime; reference TorchSharp-cpu or another backend package.");
    }

    /// <summary>libtorch.so of a libtorch-*-linux-x64 package of <paramref name="nugetVersion"/> in the NuGet package
    /// folder that holds TorchSharp (…/packages/torchsharp/&lt;version&gt;/lib/&lt;tfm&gt;/TorchSharp.dll), if any.</summary>
    internal static string? PackagedLibTorch(string torchSharpLocation, string nugetVersion)
    {
        string packages = Path.GetFullPath(Path.Combine(TorchSharpPackageFolder(torchSharpLocation), "..", ".."));
        return Directory.Exists(packages)
            ? Directory.GetDirectories(packages, "libtorch-*-linux-x64")
                .Select(p => Path.Combine(p, nugetVersion, "runtimes", "linux-x64", "native", "libtorch.so"))
                .FirstOrDefault(File.Exists)
            : null;
    }

    /// <summary>…/torchsharp/&lt;version&gt; when TorchSharp.dll runs from its NuGet package (lib/&lt;tfm&gt;/).</summary>
    private static string TorchSharpPackageFolder(string torchSharpLocation)
        => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(torchSharpLocation) ?? "", "..", ".."));

    /// <summary>$XDG_CACHE_HOME, else ~/.cache: the user's own, never a shared folder another user could write to.</summary>
    private static string UserCache() => Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
        ? xdg
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");

    /// <summary>The fixed copy's path under <paramref name="cache"/>, written (atomically, by rename) unless it is there already.</summary>
    internal static string WriteToCache(string cache, string key, byte[] elf)
    {
        string folder = Path.Combine(cache, "Microsoft.ML.Apd", "libLibTorchSharp", key);
        string path = Path.Combine(folder, LibraryFile);
        if (File.Exists(path) && File.ReadAllBytes(path).AsSpan().SequenceEqual(elf)) return path;

        Directory.CreateDirectory(folder);
        string temporary = Path.Combine(folder, $"{LibraryFile}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
            {
                file.Write(elf);
                file.Flush(flushToDisk: true);
            }
            // rename(2) replaces atomically: a process loading the library sees a whole file, never a partial one;
            // processes that start together write identical bytes.
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
        return path;
    }
}
