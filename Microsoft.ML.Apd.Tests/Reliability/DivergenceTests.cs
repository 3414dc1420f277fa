using Microsoft.ML;
using Microsoft.ML.Apd.Engine;
using Microsoft.ML.Apd.Tests.MLNet;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Tests.Reliability;

/// <summary>
/// Issue #12, defect 1: training that diverges (huge finite features, a huge learning rate) throws
/// <see cref="NotFiniteNumberException"/> naming the task, the epoch and the likely cause, and changes nothing; no model
/// with a NaN or infinite parameter is ever returned, saved or loaded.
/// </summary>
[TestClass]
public sealed class DivergenceTests
{
    private static IDataView Scaled(MLContext ml, int task, float scale) => ml.Data.LoadFromEnumerable(
        TinyData.Rows(task, "a" + task, "b" + task, 60).Select(r => { r.Features = r.Features.Select(v => v * scale).ToArray(); return r; }).ToList());

    /// <summary>Trains t0 normally, then a diverging t1: the error, and t0's model and the trainer untouched.</summary>
    private static NotFiniteNumberException DivergesKeepingTheEarlierModel(ApdTrainer.Options diverging, float scale)
    {
        var ml = new MLContext(seed: 1);
        var trainer = ml.MulticlassClassification.Trainers.Apd(ReliabilityData.Options());
        using var m1 = trainer.Fit(ReliabilityData.Task(ml, 0), "t0");
        var probe = ReliabilityData.Task(ml, 0, n: 30);
        var before = ReliabilityData.Scores(m1.Transform(probe));

        var bad = ml.MulticlassClassification.Trainers.Apd(diverging);
        var e = Assert.ThrowsExactly<NotFiniteNumberException>(() => bad.Fit(Scaled(ml, 1, scale), "t1", m1));
        StringAssert.Contains(e.Message, "task 't1'");
        StringAssert.Contains(e.Message, "diverged in epoch");
        StringAssert.Contains(e.Message, "LearningRate");
        StringAssert.Contains(e.Message, "normalized");
        Assert.IsNull(bad.LastModel, "a diverged Fit must not become the trainer's model");
        Assert.AreSame(m1, trainer.LastModel);
        CollectionAssert.AreEqual(new[] { "t0" }, m1.Tasks.ToArray());
        ReliabilityData.AssertSameScores(before, ReliabilityData.Scores(m1.Transform(probe)));

        // The earlier model still continues and saves.
        using var m2 = trainer.Fit(ReliabilityData.Task(ml, 1), "t1", m1);
        Assert.IsTrue(ReliabilityData.Scores(m2.ForTask("t0").Transform(probe)).All(r => r.All(float.IsFinite)));
        return e;
    }

    [TestMethod]
    public void HugeFiniteFeaturesThrowNamingTheTaskEpochAndCause()
    {
        var e = DivergesKeepingTheEarlierModel(ReliabilityData.Options(), scale: 3e38f);
        StringAssert.Contains(e.Message, "epoch 1/1");
        StringAssert.Contains(e.Message, "E+38"); // the largest |feature|, so the user sees the scale problem
    }

    [TestMethod]
    public void HugeLearningRateThrowsWithOneEpochAndWithSeveral()
    {
        foreach (int epochs in new[] { 1, 3 })
        {
            var options = ReliabilityData.Options();
            options.LearningRate = 1e30;
            options.NumberOfEpochs = epochs;
            var e = DivergesKeepingTheEarlierModel(options, scale: 1);
            StringAssert.Contains(e.Message, "LearningRate = 1E+30");
        }
    }

    [TestMethod]
    public void FirstTaskDivergingLeavesTheTrainerWithoutAModel()
    {
        var ml = new MLContext(seed: 1);
        var options = ReliabilityData.Options();
        options.LearningRate = 1e30;
        var trainer = ml.MulticlassClassification.Trainers.Apd(options);
        Assert.ThrowsExactly<NotFiniteNumberException>(() => trainer.Fit(ReliabilityData.Task(ml, 0), "t0"));
        Assert.IsNull(trainer.LastModel);
    }

    [TestMethod]
    public void ANetworkWithANonFiniteParameterIsNeitherSavedNorLoaded()
    {
        var ml = new MLContext(seed: 1);
        var data = ReliabilityData.Task(ml, 0, n: 40);
        using var model = ml.MulticlassClassification.Trainers.Apd(ReliabilityData.Options()).Fit(data, "t0");
        using (no_grad()) model.Network.Layers[0].Shared[0, 0] = float.NaN;
        Assert.AreEqual("σ of layer fc1", model.Network.FindNonFinite());
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => ReliabilityData.Save(ml, model, data.Schema));
        StringAssert.Contains(e.Message, "NaN or infinite");

        // A file whose parameter was made infinite (bytes patched) is rejected by the loader.
        using (no_grad()) model.Network.Layers[0].Shared[0, 0] = 0.5f;
        byte[] bytes = Engine.EngineTestData.Serialize(model.Network);
        int at = IndexOf(bytes, BitConverter.GetBytes(0.5f));
        Assert.IsTrue(at > 0);
        BitConverter.GetBytes(float.PositiveInfinity).CopyTo(bytes, at);
        var load = Assert.ThrowsExactly<InvalidDataException>(() => ApdNetwork.Load(new BinaryReader(new MemoryStream(bytes)), CPU));
        StringAssert.Contains(load.Message, "Non-finite parameter");
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
            if (haystack.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        return -1;
    }
}
