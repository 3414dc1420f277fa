using System.IO.Compression;
using Microsoft.ML;
using Microsoft.ML.Apd.Tests.MLNet;
using Microsoft.ML.Data;

namespace Microsoft.ML.Apd.Tests.Reliability;

/// <summary>Tiny, fast models and helpers for the reliability tests (1 epoch, one small hidden layer).</summary>
internal static class ReliabilityData
{
    public const string Entry = "ApdModel.bin";

    public static ApdTrainer.Options Options() => new()
    {
        HiddenLayerSizes = new[] { 8 },
        NumberOfEpochs = 1,
        BatchSize = 20,
        LearningRate = 1e-2,
        Seed = 1,
    };

    public static IDataView Task(MLContext ml, int task, int n = 60) =>
        ml.Data.LoadFromEnumerable(TinyData.Rows(task, "a" + task, "b" + task, n).ToList());

    /// <summary>The model saved into a byte array (ML.NET .zip).</summary>
    public static byte[] Save(MLContext ml, ITransformer model, DataViewSchema? inputSchema)
    {
        using var stream = new MemoryStream();
        ml.Model.Save(model, inputSchema, stream);
        return stream.ToArray();
    }

    /// <summary>
    /// The same .zip with every entry's time stamp fixed, so that its bytes (and seeded mutations of them) do not depend
    /// on when the test runs: ML.NET stamps entries with the time of saving.
    /// </summary>
    public static byte[] WithFixedTimes(byte[] zip)
    {
        using var output = new MemoryStream();
        using (var source = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read))
        using (var target = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var entry in source.Entries)
            {
                var copy = target.CreateEntry(entry.FullName);
                copy.LastWriteTime = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
                using var from = entry.Open();
                using var to = copy.Open();
                from.CopyTo(to);
            }
        }
        return output.ToArray();
    }

    /// <summary>The bytes of our entry inside a saved model .zip.</summary>
    public static byte[] ReadEntry(byte[] zip)
    {
        using var archive = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read);
        var entry = archive.Entries.Single(e => e.FullName.EndsWith(Entry, StringComparison.Ordinal));
        using var s = entry.Open();
        using var m = new MemoryStream();
        s.CopyTo(m);
        return m.ToArray();
    }

    /// <summary>A copy of the .zip with our entry's bytes replaced (re-zipped, so the zip's own CRC is valid).</summary>
    public static byte[] ReplaceEntry(byte[] zip, byte[] entryBytes)
    {
        using var output = new MemoryStream();
        output.Write(zip);
        using (var archive = new ZipArchive(output, ZipArchiveMode.Update, leaveOpen: true))
        {
            var entry = archive.Entries.Single(e => e.FullName.EndsWith(Entry, StringComparison.Ordinal));
            string name = entry.FullName;
            entry.Delete();
            using var w = archive.CreateEntry(name).Open();
            w.Write(entryBytes);
        }
        return output.ToArray();
    }

    public static List<float[]> Scores(IDataView view) => TinyData.Scores(view);

    /// <summary>
    /// Same scores up to float rounding. libtorch's CPU kernels may sum in a different order when other threads are
    /// busy, so repeated or concurrent scoring can differ in the last bits (observed: 3e-8); anything larger is a bug.
    /// </summary>
    public const float Rounding = 1e-6f;

    public static float MaxDifference(List<float[]> expected, List<float[]> actual)
    {
        Assert.AreEqual(expected.Count, actual.Count);
        float max = 0;
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.AreEqual(expected[i].Length, actual[i].Length, $"row {i}");
            for (int c = 0; c < expected[i].Length; c++) max = Math.Max(max, Math.Abs(expected[i][c] - actual[i][c]));
        }
        return max;
    }

    public static void AssertSameScores(List<float[]> expected, List<float[]> actual)
    {
        float max = MaxDifference(expected, actual);
        Assert.IsTrue(max <= Rounding, $"scores differ by {max}");
    }

    public static IEnumerable<Exception> Chain(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException) yield return x;
    }
}

/// <summary>An <see cref="IProgress{T}"/> that reports synchronously on the training thread.</summary>
internal sealed class SyncProgress<T> : IProgress<T>
{
    private readonly Action<T> _report;

    public SyncProgress(Action<T> report) => _report = report;

    public void Report(T value) => _report(value);
}

/// <summary>A stream that passes writes through and throws an <see cref="IOException"/> after <c>limit</c> bytes.</summary>
internal sealed class FailingStream : Stream
{
    private readonly Stream _inner;
    private readonly long _limit;
    private long _written;

    public FailingStream(Stream inner, long limit)
    {
        _inner = inner;
        _limit = limit;
    }

    public override bool CanRead => false;
    public override bool CanSeek => _inner.CanSeek;
    public override bool CanWrite => true;
    public override long Length => _inner.Length;
    public override long Position { get => _inner.Position; set => _inner.Position = value; }
    public override void Flush() => _inner.Flush();
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => _inner.Seek(offset, origin);
    public override void SetLength(long value) => _inner.SetLength(value);

    public override void Write(byte[] buffer, int offset, int count)
    {
        if (_written + count > _limit) throw new IOException($"Simulated disk failure after {_written} bytes.");
        _written += count;
        _inner.Write(buffer, offset, count);
    }

    // The inner stream belongs to the caller.
    protected override void Dispose(bool disposing) { }
}
