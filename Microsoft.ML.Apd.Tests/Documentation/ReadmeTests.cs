using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.ML.Apd.Tests.MLNet;
using Microsoft.ML.Data;

namespace Microsoft.ML.Apd.Tests.Documentation;

/// <summary>The README's usage block is real code: it compiles against the library's public API and runs.</summary>
[TestClass]
public sealed class ReadmeTests
{
    /// <summary>The data the README's text says the block is given, by name.</summary>
    private static readonly string[] GivenDataViews = ["shirts", "shoes", "bags", "hats", "shoesTest", "rowsWithTaskId"];

    [TestMethod]
    public void UsageBlockCompilesAgainstThePublicApiAndRuns()
    {
        var (block, firstLine) = UsageBlock(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "README.md")));
        var lines = block.Split('\n');
        var usings = lines.TakeWhile(l => l.StartsWith("using ", StringComparison.Ordinal) || l.Length == 0).ToArray();
        string body = string.Join('\n', lines.Skip(usings.Length));

        // A new console app: implicit usings, nullable enabled; #line maps diagnostics to README.md's lines.
        string source = $$"""
            global using System;
            global using System.Collections.Generic;
            global using System.IO;
            global using System.Linq;
            global using System.Threading;
            global using System.Threading.Tasks;
            {{string.Join('\n', usings)}}
            public static class ReadmeUsage
            {
                public static void Run({{string.Join(", ", GivenDataViews.Select(v => "IDataView " + v))}})
                {
            #line {{firstLine + usings.Length}} "README.md"
            {{body}}
            #line default
                }
            }
            """;
        var compilation = CSharpCompilation.Create("ReadmeUsage",
            [CSharpSyntaxTree.ParseText(source, new CSharpParseOptions(LanguageVersion.Latest))],
            References(),
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        using var image = new MemoryStream();
        var result = compilation.Emit(image);
        var problems = result.Diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning).ToList();
        Assert.IsTrue(result.Success && problems.Count == 0, "README.md's usage block:\n" + string.Join('\n', problems));

        var run = Assembly.Load(image.ToArray()).GetType("ReadmeUsage")!.GetMethod("Run")!;
        var ml = new MLContext(seed: 1);
        IDataView Rows(int task, string first, string second, int seed = 0) => ml.Data.LoadFromEnumerable(
            TinyData.Rows(task, first, second, seed: seed).Select(r => new LabeledRow { Features = r.Features, Label = r.Label }).ToList());
        var given = new[]
        {
            Rows(0, "tee", "polo"), Rows(1, "boot", "sneaker"), Rows(2, "tote", "clutch"), Rows(3, "cap", "beanie"),
            Rows(1, "boot", "sneaker", seed: 5),
            ml.Data.LoadFromEnumerable(TinyData.Rows(2, "tote", "clutch", seed: 5).Select(r => { r.TaskId = "bags"; return r; }).ToList()),
        };
        string directory = Directory.CreateTempSubdirectory("apd-readme-").FullName;
        string previous = Environment.CurrentDirectory;
        try
        {
            Environment.CurrentDirectory = directory; // the block saves "apd.zip" in the current directory
            run.Invoke(null, given);
            Assert.IsTrue(File.Exists(Path.Combine(directory, "apd.zip")));
            using var loaded = (ApdTransformer)new MLContext().Model.Load(Path.Combine(directory, "apd.zip"), out var inputSchema);
            Assert.IsNull(inputSchema.GetColumnOrNull("PredictedLabel"), "SaveAtomic was given the output schema");
            CollectionAssert.AreEqual(new[] { "shirts", "shoes", "bags" }, loaded.Tasks.ToArray());
        }
        finally
        {
            Environment.CurrentDirectory = previous;
            Directory.Delete(directory, recursive: true);
        }
    }

    private sealed class LabeledRow
    {
        [VectorType(TinyData.Size)] public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }

    /// <summary>The first C# block under "## Usage", and the README line it starts on.</summary>
    private static (string Block, int FirstLine) UsageBlock(string readme)
    {
        readme = readme.Replace("\r\n", "\n");
        int usage = readme.IndexOf("\n## Usage", StringComparison.Ordinal);
        Assert.IsGreaterThanOrEqualTo(0, usage, "README.md has no '## Usage' section");
        var match = new Regex("```csharp\n(.*?)```", RegexOptions.Singleline).Match(readme, usage);
        Assert.IsTrue(match.Success, "README.md's Usage section has no ```csharp block");
        int firstLine = readme[..match.Groups[1].Index].Count(c => c == '\n') + 1;
        return (match.Groups[1].Value, firstLine);
    }

    /// <summary>The framework and every managed assembly next to the tests (the library, ML.NET's public surface).</summary>
    private static IEnumerable<MetadataReference> References()
    {
        var framework = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetDirectoryName(p) == Path.GetDirectoryName(typeof(object).Assembly.Location));
        var local = new[] { typeof(ApdTrainer), typeof(MLContext), typeof(IDataView), typeof(TextLoader), typeof(global::TorchSharp.torch) }
            .Select(t => t.Assembly.Location)
            .Concat(Directory.GetFiles(AppContext.BaseDirectory, "Microsoft.ML*.dll"))
            .Where(p => !p.EndsWith(".Tests.dll", StringComparison.Ordinal));
        return framework.Concat(local).DistinctBy(Path.GetFileName).Select(p => MetadataReference.CreateFromFile(p));
    }
}
