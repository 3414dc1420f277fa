using Microsoft.ML;
using Microsoft.ML.Apd.Tests.MLNet;

namespace Microsoft.ML.Apd.Tests.Reliability;

/// <summary>
/// Issue #12, defect 3: a lone UTF-16 surrogate cannot survive a saved model's UTF-8, so task ids and text labels with
/// one are rejected at Fit (clear error, nothing trained); valid surrogate pairs (emoji) round-trip exactly.
/// </summary>
[TestClass]
public sealed class TextValidityTests
{
    private const string Lone = "bad\uD800";

    private static IDataView Rows(MLContext ml, string taskId, string first, string second) =>
        ml.Data.LoadFromEnumerable(TinyData.Rows(0, first, second, 40).Select(r => { r.TaskId = taskId; return r; }).ToList());

    [TestMethod]
    public void LoneSurrogatesInTaskIdsAndTextLabelsAreRejectedAtFit()
    {
        var ml = new MLContext(seed: 1);
        int batches = 0;
        var options = ReliabilityData.Options();
        options.Progress = new SyncProgress<ApdTrainingProgress>(_ => batches++);
        var trainer = ml.MulticlassClassification.Trainers.Apd(options);

        var e = Assert.ThrowsExactly<ArgumentException>(() => trainer.Fit(Rows(ml, "t0", "a", "b"), Lone));
        StringAssert.Contains(e.Message, "not valid UTF-16");
        StringAssert.Contains(e.Message, "taskId");

        e = Assert.ThrowsExactly<ArgumentException>(() => trainer.Fit(Rows(ml, Lone, "a", "b")));
        StringAssert.Contains(e.Message, "not valid UTF-16");
        StringAssert.Contains(e.Message, "task id column 'TaskId'");

        e = Assert.ThrowsExactly<ArgumentException>(() => trainer.Fit(Rows(ml, "t0", "a", "b\uDC00"), "t0"));
        StringAssert.Contains(e.Message, "label 'b");
        StringAssert.Contains(e.Message, "label column 'Label'");
        StringAssert.Contains(e.Message, "not valid UTF-16");

        var o = ReliabilityData.Options();
        o.TaskId = Lone;
        Assert.AreEqual("TaskId", Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.Apd(o)).ParamName);
        o = ReliabilityData.Options();
        o.LabelColumnName = "L\uDFFF";
        Assert.AreEqual("LabelColumnName", Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.Apd(o)).ParamName);

        Assert.AreEqual(0, batches, "nothing was trained");
        Assert.IsNull(trainer.LastModel);
    }

    [TestMethod]
    public void SurrogatePairsRoundTripExactly()
    {
        var ml = new MLContext(seed: 1);
        const string task = "shoes 👟", first = "🙂", second = "x\U0001F600y";
        var data = Rows(ml, task, first, second);
        using var model = ml.MulticlassClassification.Trainers.Apd(ReliabilityData.Options()).Fit(data);
        using var stream = new MemoryStream();
        ml.Model.Save(model, data.Schema, stream);
        stream.Position = 0;
        using var loaded = (ApdTransformer)ml.Model.Load(stream, out _);
        CollectionAssert.AreEqual(new[] { task }, loaded.Tasks.ToArray());
        CollectionAssert.AreEqual(model.GetClassNames(task).ToArray(), loaded.ForTask(task).GetClassNames(task).ToArray());
        CollectionAssert.AreEquivalent(new[] { first, second }, loaded.GetClassNames(task).ToArray());
    }

    [TestMethod]
    public void WhiteSpaceTaskIdsAreRejectedEverywhere()
    {
        var ml = new MLContext(seed: 1);
        var trainer = ml.MulticlassClassification.Trainers.Apd(ReliabilityData.Options());
        foreach (string blank in new[] { " ", "   ", "\t", "\u00A0" })
        {
            var e = Assert.ThrowsExactly<ArgumentException>(() => trainer.Fit(Rows(ml, "t0", "a", "b"), blank));
            Assert.AreEqual("taskId", e.ParamName);
            StringAssert.Contains(e.Message, "white space");
            var o = ReliabilityData.Options();
            o.TaskId = blank;
            e = Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.Apd(o));
            Assert.AreEqual("TaskId", e.ParamName);
            StringAssert.Contains(e.Message, "white space");
            var inColumn = Assert.ThrowsExactly<InvalidOperationException>(() => trainer.Fit(Rows(ml, blank, "a", "b")));
            StringAssert.Contains(inColumn.Message, "empty task id");
        }
        Assert.IsNull(trainer.LastModel);
    }
}
