using Microsoft.ML;

namespace Microsoft.ML.Apd.Tests.MLNet;

[TestClass]
public sealed class OptionsValidationTests
{
    private static Exception Create(Action<ApdTrainer.Options> change)
    {
        var options = new ApdTrainer.Options();
        change(options);
        var ml = new MLContext(seed: 1);
        return Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Apd(options));
    }

    [TestMethod]
    public void OutOfRangeValuesAreRejectedNamingTheOption()
    {
        Assert.AreEqual("NumberOfEpochs", ((ArgumentException)Create(o => o.NumberOfEpochs = -1)).ParamName);
        Assert.AreEqual("BatchSize", ((ArgumentException)Create(o => o.BatchSize = 0)).ParamName);
        Assert.AreEqual("SparsityStrength", ((ArgumentException)Create(o => o.SparsityStrength = -1e-3)).ParamName);
        Assert.AreEqual("RetroactiveStrength", ((ArgumentException)Create(o => o.RetroactiveStrength = -1)).ParamName);
        Assert.AreEqual("LearningRate", ((ArgumentException)Create(o => o.LearningRate = 0)).ParamName);
        Assert.AreEqual("LearningRateDecay", ((ArgumentException)Create(o => o.LearningRateDecay = 1.5)).ParamName);
        Assert.AreEqual("ConsolidationInterval", ((ArgumentException)Create(o => o.ConsolidationInterval = 0)).ParamName);
        Assert.AreEqual("RetroactiveWindow", ((ArgumentException)Create(o => o.RetroactiveWindow = -1)).ParamName);
        Assert.AreEqual("HiddenLayerSizes", ((ArgumentException)Create(o => o.HiddenLayerSizes = new[] { 8, 0 })).ParamName);
        Assert.AreEqual("ConsolidationThreshold", ((ArgumentException)Create(o => o.ConsolidationThreshold = double.NaN)).ParamName);
    }

    [TestMethod]
    public void InconsistentOptionsAreRejectedNamingTheOption()
    {
        var ml = new MLContext(seed: 1);
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.Apd(
            new ApdTrainer.Options { HiddenLayerSizes = Array.Empty<int>() }));
        Assert.AreEqual("HiddenLayerSizes", e.ParamName);
        e = Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.Apd(
            new ApdTrainer.Options { ConvolutionLayers = new[] { 8 } }));
        Assert.AreEqual("ImageShape", e.ParamName);
        e = Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.Apd(
            new ApdTrainer.Options { FeatureColumnName = "" }));
        Assert.AreEqual("FeatureColumnName", e.ParamName);
    }

    [TestMethod]
    public void DefaultsAreTheEngineDefaults()
    {
        var o = new ApdTrainer.Options();
        var h = new Microsoft.ML.Apd.Engine.ApdHyperparameters();
        var converted = o.ToHyperparameters(h.Seed);
        Assert.AreEqual(h, converted);
        CollectionAssert.AreEqual(new[] { 256, 128 }, o.HiddenLayerSizes);
        Assert.AreEqual("default", o.TaskId);
    }

    [TestMethod]
    public void OptionsAreSnapshotWhenTheTrainerIsCreated()
    {
        var ml = new MLContext(seed: 1);
        var epochs = new List<int>();
        var options = TinyData.FastOptions();
        options.NumberOfEpochs = 2;
        options.Progress = new Progress(p => epochs.Add(p.NumberOfEpochs));
        var trainer = ml.MulticlassClassification.Trainers.Apd(options);

        // Later changes do not reach the trainer: each of these would fail the Fit or change the model.
        options.HiddenLayerSizes[0] = 3;
        options.NumberOfEpochs = -5;
        options.FeatureColumnName = "Missing";
        options.ScoreColumnName = "Other";
        options.Progress = null;

        using var model = trainer.Fit(ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b").ToList()));
        Assert.IsTrue(epochs.Count > 0 && epochs.All(e => e == 2), "progress went to the snapshot's reporter, with its epochs");
        Assert.AreEqual(16L * TinyData.Size, model.GetStatistics().Layers.Single(l => l.Layer == "fc1").Shared, "fc1 has the snapshot's 16 units");
        Assert.AreEqual("Features", model.FeatureColumnName);
        Assert.AreEqual("Score", model.ScoreColumnName);
    }

    [TestMethod]
    public void CatalogDefaultsAreTheOptionsDefaults()
    {
        var method = typeof(ApdCatalog).GetMethods().Single(m => m.Name == "Apd" && m.GetParameters().Length > 2);
        var options = new ApdTrainer.Options();
        foreach (var parameter in method.GetParameters().Skip(1).Where(p => p.Name != "hiddenLayerSizes"))
        {
            string field = char.ToUpperInvariant(parameter.Name![0]) + parameter.Name[1..];
            Assert.AreEqual(typeof(ApdTrainer.Options).GetField(field)!.GetValue(options), parameter.DefaultValue, field);
        }
    }

    private sealed class Progress(Action<ApdTrainingProgress> report) : IProgress<ApdTrainingProgress>
    {
        public void Report(ApdTrainingProgress value) => report(value);
    }
}
