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

    /// <summary>After a task is trained only what training wrote is checked: σ, every task's τ (the retroactive update
    /// rewrites them) and the new task's own tensors; earlier tasks' masks, biases and heads are immutable and were
    /// checked when written, so the check does not re-read them. Each tensor is judged by its sum, and finite values
    /// whose sum overflows are no false alarm.</summary>
    [TestMethod]
    public void TheCheckAfterTrainingCoversWhatTrainingWrote()
    {
        using var network = Engine.EngineTestData.Train(Engine.EngineTestData.SmallMlp, 3, Engine.EngineTestData.QuickSettings);
        string first = network.Tasks[0], last = network.Tasks[^1];
        Assert.IsNull(network.FindNonFiniteAfterTraining(last));

        // Each case: a tensor, the element changed, and what the full and the after-training checks say.
        var earlierAdaptive = network.Layers[0].Slots[first].Adaptive.Values;
        Assert.IsGreaterThan(1L, earlierAdaptive.numel(), "two elements to change");
        var cases = new (Tensor Tensor, float Value, string? Full, string? AfterTraining)[]
        {
            (network.Layers[0].Shared, float.MaxValue, null, null),   // finite, and the sum of two overflows
            (network.Layers[1].Shared, float.NaN, "σ of layer fc2", "σ of layer fc2"),
            (earlierAdaptive, float.PositiveInfinity, $"task '{first}''s mask, bias or τ in layer fc1", $"task '{first}''s mask, bias or τ in layer fc1"),
            (network.Layers[1].Slots[last].MaskLogits, float.NaN, $"task '{last}''s mask, bias or τ in layer fc2", $"task '{last}''s mask, bias or τ in layer fc2"),
            (network.HeadOf(last).Bias, float.NegativeInfinity, $"task '{last}''s head", $"task '{last}''s head"),
            (network.Layers[1].Slots[first].Bias, float.NaN, $"task '{first}''s mask, bias or τ in layer fc2", null),
            (network.HeadOf(first).Weight, float.NaN, $"task '{first}''s head", null),
        };
        foreach (var (tensor, value, full, afterTraining) in cases)
        {
            var flat = tensor.view(-1);
            float[] kept = [flat[0].item<float>(), flat[1].item<float>()];
            using (no_grad())
            {
                flat[0] = value;
                flat[1] = value;
            }
            Assert.AreEqual(full, network.FindNonFinite(), $"{value}: full check");
            Assert.AreEqual(afterTraining, network.FindNonFiniteAfterTraining(last), $"{value}: after training");
            using (no_grad())
            {
                flat[0] = kept[0];
                flat[1] = kept[1];
            }
        }
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
            if (haystack.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        return -1;
    }
}
