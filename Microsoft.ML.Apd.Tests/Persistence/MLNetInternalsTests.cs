using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.ML.Apd.Persistence;

namespace Microsoft.ML.Apd.Tests.Persistence;

/// <summary>The internals doorway checks, at first use, that the running ML.NET has every member the library uses.</summary>
[TestClass]
public sealed class MLNetInternalsTests
{
    [TestMethod]
    public void EveryMLNetTypeAndMemberTheLibraryUsesExistsInTheRunningMLNet()
    {
        Assert.IsNull(MLNetInternal.FindMissingMember(typeof(ApdTrainer).Assembly));
        MLNetInternal.EnsureAvailable();
    }

    [TestMethod]
    public void AMissingMemberIsFoundAndNamedWithTheMLNetVersion()
    {
        // A probe compiled against a Microsoft.ML.Core whose ModelLoadContext has a member the running one lacks.
        var core = typeof(Microsoft.ML.Runtime.IHostEnvironment).Assembly.GetName(); // Microsoft.ML.Core
        byte[] future = Compile(core.Name!, $$"""
            [assembly: System.Reflection.AssemblyVersion("{{core.Version}}")]
            namespace Microsoft.ML { public sealed class ModelLoadContext { public void CheckAtModelFromTheFuture() { } } }
            """);
        byte[] probe = Compile("DoorwayProbe",
            "public static class Probe { public static void Use(Microsoft.ML.ModelLoadContext c) => c.CheckAtModelFromTheFuture(); }",
            MetadataReference.CreateFromImage(future));
        var module = Assembly.Load(probe).ManifestModule;
        using var pe = new PEReader(new MemoryStream(probe));
        string? missing = MLNetInternal.FindMissingMember(module, pe.GetMetadataReader());
        Assert.AreEqual("Microsoft.ML.ModelLoadContext.CheckAtModelFromTheFuture", missing);

        string message = MLNetInternal.MissingMemberMessage(missing!);
        string mlVersion = typeof(MLContext).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion.Split('+')[0];
        StringAssert.Contains(message, $"Microsoft.ML {mlVersion}");
        StringAssert.Contains(message, "Microsoft.ML.ModelLoadContext.CheckAtModelFromTheFuture");
    }

    [TestMethod]
    public void ATypeImplementingAChangedMLNetInterfaceIsFound()
    {
        // A probe compiled against a Microsoft.ML.Core whose ICanSaveModel has no members: the running one's Save is
        // then not implemented, and the type fails to load although every reference resolves.
        var core = typeof(Microsoft.ML.Runtime.IHostEnvironment).Assembly.GetName();
        byte[] past = Compile(core.Name!, $$"""
            [assembly: System.Reflection.AssemblyVersion("{{core.Version}}")]
            namespace Microsoft.ML { public interface ICanSaveModel { } }
            """);
        byte[] probe = Compile("InterfaceProbe", "public sealed class Saver : Microsoft.ML.ICanSaveModel { }", MetadataReference.CreateFromImage(past));
        string? broken = MLNetInternal.FindBrokenImplementation(Assembly.Load(probe));
        StringAssert.Contains(broken, "Saver");
        Assert.IsNull(MLNetInternal.FindBrokenImplementation(typeof(ApdTrainer).Assembly));
    }

    private static byte[] Compile(string name, string source, params MetadataReference[] references)
    {
        var framework = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetDirectoryName(p) == Path.GetDirectoryName(typeof(object).Assembly.Location))
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p));
        var compilation = CSharpCompilation.Create(name, [CSharpSyntaxTree.ParseText(source)], framework.Concat(references),
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        using var image = new MemoryStream();
        var result = compilation.Emit(image);
        Assert.IsTrue(result.Success, string.Join('\n', result.Diagnostics));
        return image.ToArray();
    }
}
