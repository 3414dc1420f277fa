using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Apd.Persistence;

namespace Microsoft.ML.Apd.Tests.Reliability;

/// <summary>
/// Feeds randomly mutated copies of a valid saved model to <c>mlContext.Model.Load</c>: each loads and predicts, or
/// fails with one of the documented exception types (README, "Errors and limits"), never a crash or a hang.
/// </summary>
[TestClass]
public sealed class LoaderFuzzTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void MutatedModelsLoadOrFailWithDocumentedExceptions()
    {
        var ml = new MLContext(seed: 1);
        var data = ReliabilityData.Task(ml, 0, n: 40);
        byte[] zip;
        // Saved without the input schema: ML.NET's reader of that entry (its BinaryLoader) loops forever on a truncated
        // one (Utils.ReadBinaryDataIntoSpan does not stop at the end of the stream; README, "Errors and limits"), a defect
        // no code of ours can reach. Our entry and ML.NET's own header and entries are still mutated.
        using (var model = ml.MulticlassClassification.Trainers.Apd(ReliabilityData.Options()).Fit(data, "t0"))
            zip = ReliabilityData.WithFixedTimes(ReliabilityData.Save(ml, model, inputSchema: null));
        byte[] entry = ReliabilityData.ReadEntry(zip);
        List<float[]> expected;
        using (var original = ml.Model.Load(new MemoryStream(zip), out _) as ApdTransformer)
            expected = ReliabilityData.Scores(original!.Transform(data));
        byte[] payload = ApdModelFormat.Read(new MemoryStream(entry));
        var random = new Random(12345);
        var outcomes = new Dictionary<string, int>();
        int tried = 0;
        var clock = Stopwatch.StartNew();

        void Try(string kind, byte[] bytes)
        {
            tried++;
            string outcome;
            try
            {
                var loaded = ml.Model.Load(new MemoryStream(bytes), out _);
                try { outcome = "loaded: " + Predict(loaded, data, kind == "payload" ? null : expected); }
                finally { (loaded as IDisposable)?.Dispose(); }
            }
            catch (Exception e)
            {
                outcome = "load: " + e.GetType().Name;
                // Mutations of the whole .zip also reach ML.NET's own entries (its header, the saved schema), whose
                // readers throw InvalidOperationException or NotSupportedException themselves; a damaged APD entry never
                // does (the "entry" and "payload" mutations hold ours to the strict set).
                // A damaged culture in ML.NET's loader assembly name throws CultureNotFoundException from its own
                // assembly-name parsing (met once format 3 changed the .zip's bytes under the same seeded mutations).
                // A damaged entry name sends ML.NET down its legacy-format path, which wraps its own InvalidOperationException
                // ("Could not load legacy format model").
                bool documented = IsDocumentedLoadFailure(e)
                    || (kind == "zip" && e is InvalidOperationException { InnerException: null or InvalidOperationException { InnerException: null } }
                        or NotSupportedException { InnerException: null }
                        or System.Globalization.CultureNotFoundException { InnerException: null });
                Assert.IsTrue(documented, $"{kind} mutation #{tried}: undocumented exception {e}");
            }
            string key = kind + " → " + outcome;
            outcomes[key] = outcomes.GetValueOrDefault(key) + 1;
        }

        for (int i = 0; i < ZipMutations; i++) Try("zip", Mutate(zip, random));
        for (int i = 0; i < EntryMutations; i++) Try("entry", ReliabilityData.ReplaceEntry(zip, Mutate(entry, random)));
        for (int i = 0; i < PayloadMutations; i++)
        {
            using var signed = new MemoryStream();
            ApdModelFormat.Write(signed, Mutate(payload, random));
            Try("payload", ReliabilityData.ReplaceEntry(zip, signed.ToArray()));
        }
        foreach (var (k, v) in outcomes.OrderBy(p => p.Key)) TestContext.WriteLine($"{v,5}  {k}");
        TestContext.WriteLine($"{tried} mutated files in {clock.Elapsed.TotalSeconds:F1} s");
        Assert.AreEqual(ZipMutations + EntryMutations + PayloadMutations, tried);
        Assert.IsTrue(outcomes.Keys.Any(k => k.StartsWith("payload → loaded", StringComparison.Ordinal)), "some re-signed payloads should load");
        Assert.IsTrue(outcomes.Keys.Any(k => k.StartsWith("payload → load:", StringComparison.Ordinal)), "some re-signed payloads should be rejected by our parser");
    }

    /// <summary>
    /// Size forging: every count, length and size field of a valid payload (found by reading it with a reader that
    /// records where each integer lies) is overwritten with values that declare more than the file holds, negative or
    /// boundary values, and the payload re-signed. Each file loads and predicts or fails with our
    /// <see cref="InvalidDataException"/>, and no load allocates more than a few MB, whatever the file declares.
    /// </summary>
    [TestMethod]
    public void ForgedCountsAndLengthsFailCleanlyWithBoundedMemory()
    {
        var ml = new MLContext(seed: 1);
        var data = ReliabilityData.Task(ml, 0, n: 40);
        byte[] zip;
        // Two tasks, so the payload has enough fields for 250 forged files (format 3 dropped the saved hyperparameters).
        var trainer = ml.MulticlassClassification.Trainers.Apd(ReliabilityData.Options());
        using (var first = trainer.Fit(data, "t0"))
        using (var model = trainer.Fit(ReliabilityData.Task(ml, 1, n: 40), "t1", first))
            zip = ReliabilityData.Save(ml, model, data.Schema);
        byte[] payload = ApdModelFormat.Read(new MemoryStream(ReliabilityData.ReadEntry(zip)));
        var recorder = new FieldRecorder(new MemoryStream(payload));
        ApdTransformer.Deserialize(ml, recorder).Dispose();
        TestContext.WriteLine($"{recorder.Fields.Count} integer fields and string lengths in a {payload.Length}-byte payload");

        long[] forged32 = { -1, 0, 1, 1 << 16, (1 << 20) + 1, 1 << 28, (1 << 28) + 1, 536_870_904, int.MaxValue };
        long[] forged64 = { -1, 0, 1 << 28, 536_870_904, 1L << 40, long.MaxValue };
        int tried = 0, loaded = 0;
        long maxAllocated = 0;
        var outcomes = new Dictionary<string, int>();
        foreach (var (position, width) in recorder.Fields)
        {
            var variants = new List<byte[]>();
            if (width == 0)
            {
                variants.Add(Patched(payload, position, [0x7F]));                          // a longer string
                variants.Add(Inserted(payload, position, [0xFF, 0xFF, 0xFF, 0xFF, 0x07])); // int.MaxValue chars
            }
            else
            {
                long original = width == 4 ? BitConverter.ToInt32(payload, (int)position) : BitConverter.ToInt64(payload, (int)position);
                foreach (long value in (width == 4 ? forged32 : forged64).Concat(new[] { original * 2, original + 1, original - 1 }).Distinct())
                    if (value != original)
                        variants.Add(Patched(payload, position, width == 4 ? BitConverter.GetBytes((int)value) : BitConverter.GetBytes(value)));
            }
            foreach (var variant in variants)
            {
                tried++;
                using var signed = new MemoryStream();
                ApdModelFormat.Write(signed, variant);
                byte[] file = ReliabilityData.ReplaceEntry(zip, signed.ToArray());
                long before = GC.GetAllocatedBytesForCurrentThread();
                string outcome;
                try
                {
                    var model = ml.Model.Load(new MemoryStream(file), out _);
                    try { outcome = "loaded: " + Predict(model, data, null); loaded++; }
                    finally { (model as IDisposable)?.Dispose(); }
                }
                catch (Exception e)
                {
                    outcome = "load: " + (e.InnerException ?? e).GetType().Name;
                    Assert.IsTrue(IsDocumentedLoadFailure(e), $"field at {position} (width {width}): undocumented exception {e}");
                }
                long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                maxAllocated = Math.Max(maxAllocated, allocated);
                Assert.IsTrue(allocated < 16 << 20, $"field at {position} (width {width}): loading allocated {allocated:N0} bytes");
                outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
            }
        }
        foreach (var (k, v) in outcomes.OrderBy(p => p.Key)) TestContext.WriteLine($"{v,5}  {k}");
        TestContext.WriteLine($"{tried} forged files; at most {maxAllocated:N0} bytes allocated by one load");
        Assert.IsTrue(recorder.Fields.Count >= 30, $"the recorder found {recorder.Fields.Count} fields");
        Assert.IsTrue(tried >= 250, $"{tried} forged files from {recorder.Fields.Count} fields");
    }

    private static byte[] Patched(byte[] payload, long position, byte[] value)
    {
        var copy = (byte[])payload.Clone();
        value.CopyTo(copy, position);
        return copy;
    }

    private static byte[] Inserted(byte[] payload, long position, byte[] value) =>
        [.. payload.AsSpan(0, (int)position), .. value, .. payload.AsSpan((int)position + 1)];

    /// <summary>Records the position and width of every integer the loader reads (width 0: a string's length prefix).</summary>
    private sealed class FieldRecorder(Stream stream) : BinaryReader(stream, System.Text.Encoding.UTF8)
    {
        public List<(long Position, int Width)> Fields { get; } = new();
        public override int ReadInt32() { Fields.Add((BaseStream.Position, 4)); return base.ReadInt32(); }
        public override uint ReadUInt32() { Fields.Add((BaseStream.Position, 4)); return base.ReadUInt32(); }
        public override long ReadInt64() { Fields.Add((BaseStream.Position, 8)); return base.ReadInt64(); }
        public override ulong ReadUInt64() { Fields.Add((BaseStream.Position, 8)); return base.ReadUInt64(); }
        public override string ReadString() { Fields.Add((BaseStream.Position, 0)); return base.ReadString(); }
    }

    // How many mutated copies of each kind: the .zip's bytes; our entry's bytes, re-zipped (so the zip CRC is valid
    // and our checksum must catch it); our payload's bytes, re-signed (so our parser itself must catch it).
    private const int ZipMutations = 400, EntryMutations = 200, PayloadMutations = 600;

    /// <summary>
    /// The documented failures of <c>mlContext.Model.Load</c> on a damaged APD model (README, "Errors and limits"):
    /// <see cref="InvalidDataException"/> (a damaged .zip, or our entry; ML.NET invokes our loader by reflection, so
    /// ours arrive as the InnerException of a <see cref="System.Reflection.TargetInvocationException"/>),
    /// <see cref="FormatException"/> (ML.NET's checks of its own header and entries) and <see cref="IOException"/>
    /// (ML.NET reading its own truncated entries, or a damaged loader assembly name).
    /// </summary>
    internal static bool IsDocumentedLoadFailure(Exception e) => e switch
    {
        // ML.NET's wrappers around a failure inside our loader: the reflection call, and ComponentCatalog's
        // "Error during class instantiation" when its own checks (e.g. ModelLoadContext.CheckAtModel) throw there.
        System.Reflection.TargetInvocationException { InnerException: { } inner } => IsDocumentedLoadFailure(inner),
        InvalidOperationException { InnerException: System.Reflection.TargetInvocationException inner } => IsDocumentedLoadFailure(inner),
        InvalidDataException or FormatException or IOException => true,
        _ => false,
    };

    /// <summary>A model that loads must predict; a re-signed payload may have renamed a column or task, which then
    /// fails with the documented schema (column) or routing (task) errors.
    /// Outside a re-signed payload nothing can change the parameters: <paramref name="expected"/> must then be met.</summary>
    private static string Predict(ITransformer model, IDataView data, List<float[]>? expected)
    {
        try
        {
            var scores = ReliabilityData.Scores(model.Transform(data));
            Assert.AreEqual(40, scores.Count);
            if (expected is not null) ReliabilityData.AssertSameScores(expected, scores);
            Assert.IsTrue(scores.All(row => row.All(float.IsFinite)), "a loaded model predicted a non-finite score");
            return "predicted";
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or InvalidOperationException)
        {
            return "predict: " + e.GetType().Name;
        }
    }

    /// <summary>1–4 random edits: flip a bit, overwrite a byte, or (rarely) truncate.</summary>
    private static byte[] Mutate(byte[] original, Random random)
    {
        var bytes = (byte[])original.Clone();
        int edits = random.Next(1, 5);
        for (int e = 0; e < edits; e++)
        {
            int at = random.Next(bytes.Length);
            switch (random.Next(10))
            {
                case < 5: bytes[at] ^= (byte)(1 << random.Next(8)); break;
                case < 9: bytes[at] = (byte)random.Next(256); break;
                default: Array.Resize(ref bytes, at); break;
            }
            if (bytes.Length == 0) break;
        }
        return bytes;
    }
}
