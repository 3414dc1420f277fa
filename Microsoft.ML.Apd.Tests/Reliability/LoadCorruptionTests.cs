using System.Buffers.Binary;
using System.Reflection;
using System.Security.Cryptography;
using Microsoft.ML;
using Microsoft.ML.Apd.Persistence;

namespace Microsoft.ML.Apd.Tests.Reliability;

/// <summary>Truncated, bit-flipped and newer-version model files fail with the documented, clear exceptions.</summary>
[TestClass]
public sealed class LoadCorruptionTests
{
    private static (MLContext Ml, byte[] Zip) Saved()
    {
        var ml = new MLContext(seed: 1);
        var data = ReliabilityData.Task(ml, 0, n: 40);
        using var model = ml.MulticlassClassification.Trainers.Apd(ReliabilityData.Options()).Fit(data, "t0");
        return (ml, ReliabilityData.Save(ml, model, data.Schema));
    }

    private static InvalidDataException OurError(MLContext ml, byte[] zip)
    {
        var e = Assert.ThrowsExactly<TargetInvocationException>(() => ml.Model.Load(new MemoryStream(zip), out _));
        return (InvalidDataException)e.InnerException!;
    }

    [TestMethod]
    public void TruncatedZipIsInvalidData()
    {
        var (ml, zip) = Saved();
        foreach (int length in new[] { 0, 10, zip.Length / 2, zip.Length - 1 })
        {
            var e = Assert.Throws<Exception>(() => ml.Model.Load(new MemoryStream(zip[..length]), out _));
            Assert.IsTrue(LoaderFuzzTests.IsDocumentedLoadFailure(e), e.ToString());
            Assert.IsTrue(ReliabilityData.Chain(e).Any(x => x is InvalidDataException), e.ToString());
        }
    }

    [TestMethod]
    public void BitFlipInOurEntryFailsTheChecksum()
    {
        var (ml, zip) = Saved();
        byte[] entry = ReliabilityData.ReadEntry(zip);
        foreach (int at in new[] { 30, entry.Length / 2, entry.Length - 40 })
        {
            var flipped = (byte[])entry.Clone();
            flipped[at] ^= 0x10;
            StringAssert.Contains(OurError(ml, ReliabilityData.ReplaceEntry(zip, flipped)).Message, "checksum");
        }
    }

    [TestMethod]
    public void NewerFormatVersionAsksToUpgrade()
    {
        var (ml, zip) = Saved();
        byte[] entry = ReliabilityData.ReadEntry(zip);
        int newer = ApdModelFormat.CurrentVersion + 1;
        BinaryPrimitives.WriteInt32LittleEndian(entry.AsSpan(8), newer); // format version, checksum made valid again
        SHA256.HashData(entry.AsSpan(0, entry.Length - 32)).CopyTo(entry, entry.Length - 32);
        var e = OurError(ml, ReliabilityData.ReplaceEntry(zip, entry));
        StringAssert.Contains(e.Message, $"version {newer}");
        StringAssert.Contains(e.Message, "Upgrade Microsoft.ML.Apd");
    }
}
