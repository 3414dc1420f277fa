using System.Buffers.Binary;
using System.IO.Compression;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Apd.Persistence;

namespace Microsoft.ML.Apd.Tests.Reliability;

/// <summary>
/// Issue #12, defect 5: crafted files — a re-signed payload declaring a huge tensor, a deflate bomb — fail with the
/// documented <see cref="InvalidDataException"/> (inside ML.NET's <see cref="TargetInvocationException"/>) and cost
/// memory in proportion to the file, not to what it declares.
/// </summary>
[TestClass]
public sealed class CraftedFileTests
{
    public TestContext TestContext { get; set; } = null!;

    private static (MLContext Ml, byte[] Zip, byte[] Payload) Saved()
    {
        var ml = new MLContext(seed: 1);
        var data = ReliabilityData.Task(ml, 0, n: 40);
        using var model = ml.MulticlassClassification.Trainers.Apd(ReliabilityData.Options()).Fit(data, "t0");
        byte[] zip = ReliabilityData.Save(ml, model, data.Schema);
        return (ml, zip, ApdModelFormat.Read(new MemoryStream(ReliabilityData.ReadEntry(zip))));
    }

    internal static byte[] Signed(byte[] zip, byte[] payload)
    {
        using var signed = new MemoryStream();
        ApdModelFormat.Write(signed, payload);
        return ReliabilityData.ReplaceEntry(zip, signed.ToArray());
    }

    /// <summary>Loads <paramref name="zip"/>, expecting our <see cref="InvalidDataException"/>; returns it and the
    /// managed bytes the load allocated on this thread.</summary>
    internal static (InvalidDataException Error, long Allocated) LoadFails(MLContext ml, byte[] zip)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.ThrowsExactly<TargetInvocationException>(() => ml.Model.Load(new MemoryStream(zip), out _));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.IsInstanceOfType<InvalidDataException>(e.InnerException, e.ToString());
        return ((InvalidDataException)e.InnerException!, allocated);
    }

    /// <summary>Offset of the network's magic "APD1" in a payload.</summary>
    private static int NetworkStart(byte[] payload)
    {
        var magic = "APD1"u8.ToArray();
        for (int i = 0; i + 4 <= payload.Length; i++)
            if (payload.AsSpan(i, 4).SequenceEqual(magic)) return i;
        throw new AssertFailedException("no network in the payload");
    }

    [TestMethod]
    public void AReSignedPayloadDeclaringAHugeTensorIsInvalidDataNotOutOfMemory()
    {
        var (ml, zip, payload) = Saved();
        int network = NetworkStart(payload);
        // magic, version, input size (8), hidden count (1), hidden size: a layer of 8 × 2^25 = 2^28 weights, within
        // the limits, but its 1 GiB of values are not in the file.
        var huge = (byte[])payload.Clone();
        BinaryPrimitives.WriteInt32LittleEndian(huge.AsSpan(network + 16), 1 << 25);
        var (error, allocated) = LoadFails(ml, Signed(zip, huge));
        StringAssert.Contains(error.Message, "1,073,741,824 bytes");
        StringAssert.Contains(error.Message, "remain");
        Assert.IsTrue(allocated < 32 << 20, $"allocated {allocated:N0} bytes");

        // The repro: 536,870,904 floats (2 GiB), over the per-tensor limit.
        BinaryPrimitives.WriteInt32LittleEndian(huge.AsSpan(network + 16), 536_870_904 / 8);
        (error, allocated) = LoadFails(ml, Signed(zip, huge));
        StringAssert.Contains(error.Message, "Invalid architecture");
        Assert.IsTrue(allocated < 32 << 20, $"allocated {allocated:N0} bytes");
    }

    [TestMethod]
    public void ADeflateBombIsRejectedByItsChecksumWithoutAllocatingWhatItDeclares()
    {
        var (ml, zip, _) = Saved();
        const long declared = 256L << 20;
        using var output = new MemoryStream();
        output.Write(zip);
        using (var archive = new ZipArchive(output, ZipArchiveMode.Update, leaveOpen: true))
        {
            var entry = archive.Entries.Single(e => e.FullName.EndsWith(ReliabilityData.Entry, StringComparison.Ordinal));
            string name = entry.FullName;
            entry.Delete();
            using var w = archive.CreateEntry(name, CompressionLevel.Fastest).Open();
            var header = new byte[20];
            "APDMODEL"u8.CopyTo(header);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), 1);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(12), declared);
            w.Write(header);
            var zeros = new byte[1 << 20];
            for (long written = 0; written < declared + 32; written += zeros.Length) w.Write(zeros, 0, (int)Math.Min(zeros.Length, declared + 32 - written));
        }
        byte[] bomb = output.ToArray();
        TestContext.WriteLine($"bomb: {bomb.Length:N0} bytes declaring {declared:N0}");
        var (error, allocated) = LoadFails(ml, bomb);
        StringAssert.Contains(error.Message, "checksum");
        TestContext.WriteLine($"allocated while loading: {allocated:N0} bytes");
        Assert.IsTrue(allocated < 2 * bomb.Length + (8 << 20), $"allocated {allocated:N0} bytes for a {bomb.Length:N0}-byte file");
    }

    [TestMethod]
    public void DuplicateTasksAndReorderedLabelsAreInvalidData()
    {
        var (ml, zip, payload) = Saved();
        // Task names are written twice: in the label sets and in the network. Rename the network's copy.
        var renamed = ReplaceAscii(payload, "t0", "t1", occurrence: 1);
        StringAssert.Contains(LoadFails(ml, Signed(zip, renamed)).Error.Message, "tasks do not match");
        // Swap the two stored label values ("a0" < "b0") so that they are no longer ascending.
        var swapped = ReplaceAscii(ReplaceAscii(ReplaceAscii(payload, "a0", "zz", 0), "b0", "a0", 0), "zz", "b0", 0);
        StringAssert.Contains(LoadFails(ml, Signed(zip, swapped)).Error.Message, "not distinct and ascending");
    }

    private static byte[] ReplaceAscii(byte[] bytes, string from, string to, int occurrence)
    {
        var copy = (byte[])bytes.Clone();
        var f = System.Text.Encoding.ASCII.GetBytes(from);
        for (int i = 0, seen = 0; i + f.Length <= copy.Length; i++)
            if (copy.AsSpan(i, f.Length).SequenceEqual(f) && seen++ == occurrence)
            {
                System.Text.Encoding.ASCII.GetBytes(to).CopyTo(copy, i);
                return copy;
            }
        throw new AssertFailedException($"'{from}' #{occurrence} not found");
    }
}
