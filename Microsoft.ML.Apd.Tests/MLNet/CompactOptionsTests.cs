using Microsoft.ML;

namespace Microsoft.ML.Apd.Tests.MLNet;

/// <summary>The compactness options through the public API: validation, the authors' preset, and save → load →
/// predict / continue bit for bit with half-precision storage.</summary>
[TestClass]
public sealed class CompactOptionsTests
{
    private static ApdTrainer.Options Compact()
    {
        var o = TinyData.FastOptions();
        o.TrainFirstTaskAdaptive = false;
        o.AdaptiveStartsAtZero = true;
        o.ProximalStrength = 0.2;
        o.InitialMaskLogit = 3;
        o.HalfPrecisionStorage = true;
        o.ConsolidationInterval = 2;
        o.LowRankAdaptiveRank = 4;
        return o;
    }

    [TestMethod]
    public void OutOfRangeCompactOptionsAreRejectedNamingTheOption()
    {
        var ml = new MLContext(seed: 1);
        foreach (var (change, name) in new (Action<ApdTrainer.Options>, string)[]
        {
            (o => o.ProximalStrength = -0.1, nameof(ApdTrainer.Options.ProximalStrength)),
            (o => o.ProximalStrength = double.PositiveInfinity, nameof(ApdTrainer.Options.ProximalStrength)),
            (o => o.InitialMaskLogit = double.NaN, nameof(ApdTrainer.Options.InitialMaskLogit)),
            (o => o.LowRankAdaptiveRank = -1, nameof(ApdTrainer.Options.LowRankAdaptiveRank)),
            (o => o.LowRankAdaptiveLayers = 0, nameof(ApdTrainer.Options.LowRankAdaptiveLayers)),
            (o => o.LowRankAdaptiveLayers = 3, nameof(ApdTrainer.Options.LowRankAdaptiveLayers)), // the default network has 2 layers
            (o => o.LowRankKeptEnergy = 0, nameof(ApdTrainer.Options.LowRankKeptEnergy)),
            (o => o.LowRankKeptEnergy = 1.5, nameof(ApdTrainer.Options.LowRankKeptEnergy)),
            (o => o.LowRankKeptEnergy = double.NaN, nameof(ApdTrainer.Options.LowRankKeptEnergy)),
            (o => o.LowRankLearningRateMultiplier = 0, nameof(ApdTrainer.Options.LowRankLearningRateMultiplier)),
            (o => o.LowRankLearningRateMultiplier = double.NaN, nameof(ApdTrainer.Options.LowRankLearningRateMultiplier)),
            (o => o.LearningRateSchedule = (LearningRateSchedule)7, nameof(ApdTrainer.Options.LearningRateSchedule)),
            (o => o.LowRankLearningRateSchedule = (LearningRateSchedule)(-1), nameof(ApdTrainer.Options.LowRankLearningRateSchedule)),
        })
        {
            var options = new ApdTrainer.Options();
            change(options);
            var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Apd(options));
            Assert.AreEqual(name, e.ParamName);
        }
    }

    /// <summary>The preset is the authors' algorithm: every compactness lever off (no low-rank part) and the authors' β,
    /// every other option the default (the authors' learning rate, ×0.95 per epoch, is the default).</summary>
    [TestMethod]
    public void PaperPresetIsTheAuthorsAlgorithm()
    {
        var paper = ApdTrainer.Options.Paper().ToHyperparameters(1);
        Assert.IsTrue(paper.TrainFirstTaskAdaptive);
        Assert.IsFalse(paper.AdaptiveStartsAtZero);
        Assert.AreEqual(0.0, paper.ProximalStrength);
        Assert.IsNull(paper.InitialMaskLogit);
        Assert.IsFalse(paper.HalfPrecisionStorage);
        Assert.AreEqual(1e-2, paper.ConsolidationThreshold);
        Assert.AreEqual(0, paper.LowRankAdaptiveRank);
        Assert.AreEqual(0, paper.RetroactiveWindow, "every task follows σ forever");
        Assert.AreEqual(LearningRateSchedule.ExponentialPerEpoch, paper.LearningRateSchedule);
        Assert.AreEqual(0.95, paper.LearningRateDecay);
        var defaults = new ApdTrainer.Options().ToHyperparameters(1);
        Assert.AreEqual(defaults with
        {
            TrainFirstTaskAdaptive = true, AdaptiveStartsAtZero = false, ProximalStrength = 0, InitialMaskLogit = null,
            HalfPrecisionStorage = false, ConsolidationThreshold = 1e-2, LowRankAdaptiveRank = 0, RetroactiveWindow = 0,
        }, paper);
    }

    /// <summary>With every lever on (half-precision storage, a low-rank part, a consolidation after two tasks): the model Fit returns
    /// predicts exactly as the one saved and loaded, and continuing either gives the same bytes.</summary>
    [TestMethod]
    public void SaveLoadPredictAndContinueAreBitExactWithHalfPrecision()
    {
        var ml = new MLContext(seed: 1);
        var trainer = ml.MulticlassClassification.Trainers.Apd(Compact());
        var data = ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b").Concat(TinyData.Rows(1, "c", "d")).ToList());
        using var model = trainer.Fit(data);
        Assert.IsGreaterThan(0.85, ml.MulticlassClassification.Evaluate(model.ForTask("t1").Transform(data)).MicroAccuracy);
        using var stream = new MemoryStream();
        ml.Model.Save(model, data.Schema, stream);
        stream.Position = 0;
        using var loaded = (ApdTransformer)new MLContext().Model.Load(stream, out _);
        SurfaceTests.AssertSame(TinyData.Scores(model.Transform(data)), TinyData.Scores(loaded.Transform(data)));

        var next = ml.Data.LoadFromEnumerable(TinyData.Rows(2, "e", "f").ToList());
        using var continued = trainer.Fit(next, "t2", model);
        using var continuedLoaded = trainer.Fit(next, "t2", loaded);
        var all = ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b").Concat(TinyData.Rows(1, "c", "d")).Concat(TinyData.Rows(2, "e", "f")).ToList());
        SurfaceTests.AssertSame(TinyData.Scores(continued.Transform(all)), TinyData.Scores(continuedLoaded.Transform(all)));
        CollectionAssert.AreEqual(continued.SerializePayload(), continuedLoaded.SerializePayload());
    }
}
