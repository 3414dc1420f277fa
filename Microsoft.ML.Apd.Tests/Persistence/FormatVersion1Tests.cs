using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Apd.Tests.Persistence;

/// <summary>
/// A model saved by the release before format 3 (envelope format 1, network format 2; two tasks t0, t1 with text labels,
/// made by a small program on commit f615736) loads, predicts what it predicted then, and trains on.
/// </summary>
[TestClass]
public sealed class FormatVersion1Tests
{
    public sealed class Row
    {
        [VectorType(8)] public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
        public string TaskId { get; set; } = "";
    }

    public sealed class Prediction
    {
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = [];
    }

    // The generator of the rows the saving program trained on and scored.
    private static Row Probe(int task, int i)
    {
        var f = Enumerable.Range(0, 8).Select(d => MathF.Sin(i * 7.3f + d * 1.9f + task)).ToArray();
        return new Row { Features = f, Label = (f[task] > 0 ? "up" : "down") + task, TaskId = "t" + task };
    }

    private static string DataFile(string name) => Path.Combine(AppContext.BaseDirectory, "Persistence", "Data", name);

    [TestMethod]
    public void ModelOfFormat1LoadsPredictsAsWhenSavedAndTrainsOn()
    {
        var ml = new MLContext(seed: 1);
        using var loaded = (ApdTransformer)ml.Model.Load(DataFile("model-format1.zip"), out _);
        CollectionAssert.AreEqual(new[] { "t0", "t1" }, loaded.Tasks.ToArray());
        Assert.AreEqual("Score", loaded.ScoreColumnName);
        Assert.IsFalse(loaded.RequireTaskId);

        var probe = Enumerable.Range(0, 6).Select(i => Probe(i % 2, 1000 + i)).ToList();
        var predictions = ml.Data.CreateEnumerable<Prediction>(loaded.Transform(ml.Data.LoadFromEnumerable(probe)), reuseRowObject: false).ToList();
        var expected = File.ReadAllLines(DataFile("model-format1-scores.txt"));
        Assert.AreEqual(expected.Length, predictions.Count);
        for (int i = 0; i < expected.Length; i++)
        {
            var parts = expected[i].Split(' ');
            Assert.AreEqual(parts[0], predictions[i].PredictedLabel, $"row {i}");
            var scores = parts[1..].Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            Assert.AreEqual(scores.Length, predictions[i].Score.Length);
            for (int c = 0; c < scores.Length; c++) // to float rounding: libtorch's sums may run in another order
                Assert.AreEqual(scores[c], predictions[i].Score[c], 1e-6, $"row {i}");
        }

        // Saved again it is format 3 and predicts the same; training goes on from it.
        using var stream = new MemoryStream();
        ml.Model.Save(loaded, ml.Data.LoadFromEnumerable(probe).Schema, stream);
        stream.Position = 0;
        using var again = (ApdTransformer)new MLContext().Model.Load(stream, out _);
        AssertSameScores(ml, loaded, again, probe);
        var next = Enumerable.Range(0, 100).Select(i => Probe(2, i)).ToList();
        using var continued = ml.MulticlassClassification.Trainers.Apd(MLNet.TinyData.FastOptions()).Fit(ml.Data.LoadFromEnumerable(next), again);
        CollectionAssert.AreEqual(new[] { "t0", "t1", "t2" }, continued.Tasks.ToArray());
    }

    // To float rounding, as above.
    private static void AssertSameScores(MLContext ml, ApdTransformer a, ApdTransformer b, List<Row> rows)
    {
        var data = ml.Data.LoadFromEnumerable(rows);
        var expected = MLNet.TinyData.Scores(a.Transform(data));
        var actual = MLNet.TinyData.Scores(b.Transform(data));
        Assert.AreEqual(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
            for (int c = 0; c < expected[i].Length; c++)
                Assert.AreEqual(expected[i][c], actual[i][c], 1e-6, $"row {i}");
    }
}
