using Microsoft.ML;
using Microsoft.ML.Apd.Tests.MLNet;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Apd.Tests.Reliability;

/// <summary>
/// Issue #12, defect 4: a row whose features are NaN or ±∞ (or so large the network overflows) gets NaN scores and a
/// missing PredictedLabel — never the first class — and MLContext.Log gets one warning per Transform.
/// </summary>
[TestClass]
public sealed class NonFiniteScoringTests
{
    private sealed class FloatRow
    {
        [VectorType(TinyData.Size)] public float[] Features { get; set; } = new float[TinyData.Size];
        public float Label { get; set; }
    }

    private static float[] Row(int i, float bad = 0)
    {
        var f = Enumerable.Range(0, TinyData.Size).Select(d => (float)Math.Sin(i * 3 + d)).ToArray();
        if (bad != 0) f[2] = bad;
        return f;
    }

    private static readonly float[] Bad = { float.NaN, float.PositiveInfinity, float.NegativeInfinity, -float.NaN };

    [TestMethod]
    public void UnscorableRowsGetNaNScoresAMissingLabelAndOneWarningPerTransform()
    {
        var ml = new MLContext(seed: 1);
        var warnings = new List<string>();
        ml.Log += (_, e) => { if (e.Kind == ChannelMessageKind.Warning && e.Message.Contains("cannot be scored")) lock (warnings) warnings.Add(e.Message); };
        var train = ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b", 60).ToList());
        using var model = ml.MulticlassClassification.Trainers.Apd(ReliabilityData.Options()).Fit(train, "t0");

        var rows = Enumerable.Range(0, 12).Select(i => new TinyData.TextRow
        {
            Features = Row(i, i % 3 == 0 ? Bad[i / 3] : 0), Label = "a", TaskId = "t0",
        }).ToList();
        var scored = model.Transform(ml.Data.LoadFromEnumerable(rows));
        var labels = TinyData.Column<ReadOnlyMemory<char>>(scored, "PredictedLabel").Select(v => v.ToString()).ToList();
        var scores = ReliabilityData.Scores(scored);
        for (int i = 0; i < rows.Count; i++)
        {
            bool bad = i % 3 == 0;
            Assert.AreEqual(bad, scores[i].All(float.IsNaN), $"row {i}: {string.Join(", ", scores[i])}");
            Assert.IsTrue(bad || scores[i].All(float.IsFinite), $"row {i}");
            Assert.AreEqual(bad, labels[i].Length == 0, $"row {i}: predicted '{labels[i]}'");
        }
        Assert.AreEqual(1, warnings.Count, "one warning for the Transform, not one per row or per cursor");
        StringAssert.Contains(warnings[0], "feature column 'Features'");
        ReliabilityData.Scores(scored); // a second cursor of the same Transform warns no more
        Assert.AreEqual(1, warnings.Count);
        ReliabilityData.Scores(model.Transform(ml.Data.LoadFromEnumerable(rows)));
        Assert.AreEqual(2, warnings.Count, "a new Transform warns again");

        // PredictionEngine (managed single-row path): the same result.
        var engine = ml.Model.CreatePredictionEngine<TinyData.TextRow, TinyData.TextPrediction>(model);
        var p = engine.Predict(rows[3]);
        Assert.IsTrue(p.Score.All(float.IsNaN));
        Assert.AreEqual("", p.PredictedLabel);
        Assert.AreNotEqual("", engine.Predict(rows[1]).PredictedLabel);
        Assert.AreEqual(3, warnings.Count);
    }

    [TestMethod]
    public void MissingValueFollowsTheLabelType()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 40).Select(i => new FloatRow { Features = Row(i), Label = Row(i)[0] > 0 ? 1 : 0 }).ToList());
        using var model = ml.MulticlassClassification.Trainers.Apd(ReliabilityData.Options()).Fit(train, "f");
        var rows = new[] { new FloatRow { Features = Row(1, float.NaN) }, new FloatRow { Features = Row(1) } };
        var predicted = TinyData.Column<float>(model.Transform(ml.Data.LoadFromEnumerable(rows)), "PredictedLabel");
        Assert.IsTrue(float.IsNaN(predicted[0]));
        Assert.IsFalse(float.IsNaN(predicted[1]));

        // Keys: 0, the missing key.
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train);
        using var keyModel = ml.MulticlassClassification.Trainers.Apd(ReliabilityData.Options()).Fit(keyed.Transform(train), "k");
        var keys = TinyData.Column<uint>(keyModel.Transform(keyed.Transform(ml.Data.LoadFromEnumerable(rows))), "PredictedLabel");
        Assert.AreEqual(0u, keys[0]);
        Assert.AreNotEqual(0u, keys[1]);
    }
}
