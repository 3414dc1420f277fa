using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Apd.Tests.MLNet;

/// <summary>The scoring cache's budget through the public API: an option, a property, no effect on predictions.</summary>
[TestClass]
public sealed class ScoringCacheTests
{
    [TestMethod]
    public void TheBudgetChangesNoPredictionAndIsNotSaved()
    {
        var ml = new MLContext(seed: 1);
        var options = TinyData.FastOptions();
        options.ScoringCacheMegabytes = 0;
        var data = ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b").Concat(TinyData.Rows(1, "c", "d")).Concat(TinyData.Rows(2, "e", "f")).ToList());
        using var model = ml.MulticlassClassification.Trainers.Apd(options).Fit(data);
        Assert.AreEqual(0, model.ScoringCacheMegabytes);

        var uncached = TinyData.Scores(model.Transform(data));
        var single = Predict(ml, model, data);
        model.ScoringCacheMegabytes = ApdTrainer.Options.Defaults.ScoringCacheMegabytes;
        var cached = TinyData.Scores(model.Transform(data));
        Assert.AreEqual(uncached.Count, cached.Count);
        for (int i = 0; i < cached.Count; i++) CollectionAssert.AreEqual(uncached[i], cached[i], $"row {i}");
        CollectionAssert.AreEqual(single, Predict(ml, model, data));

        using (var forgotten = model.Forget("t1")) Assert.AreEqual(model.ScoringCacheMegabytes, forgotten.ScoringCacheMegabytes, "Forget's model inherits it");
        model.ScoringCacheMegabytes = 1;
        using var stream = new MemoryStream();
        ml.Model.Save(model, data.Schema, stream);
        stream.Position = 0;
        using var loaded = (ApdTransformer)ml.Model.Load(stream, out _);
        Assert.AreEqual(ApdTrainer.Options.Defaults.ScoringCacheMegabytes, loaded.ScoringCacheMegabytes, "not saved: a loaded model starts at the default");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.ScoringCacheMegabytes = -1);
        Assert.AreEqual("ScoringCacheMegabytes", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            ml.MulticlassClassification.Trainers.Apd(new ApdTrainer.Options { ScoringCacheMegabytes = -1 })).ParamName);
    }

    /// <summary>Every row through a PredictionEngine (the managed single-row path): its predicted labels and scores.</summary>
    private static string[] Predict(MLContext ml, ApdTransformer model, IDataView data)
    {
        using var engine = ml.Model.CreatePredictionEngine<TinyData.TextRow, TinyData.TextPrediction>(model, new PredictionEngineOptions { OwnsTransformer = false });
        return ml.Data.CreateEnumerable<TinyData.TextRow>(data, reuseRowObject: false).Select(r => engine.Predict(r)).Select(p => $"{p.PredictedLabel}: {string.Join(", ", p.Score)}").ToArray();
    }
}
