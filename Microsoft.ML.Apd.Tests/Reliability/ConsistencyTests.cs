using Microsoft.ML;
using Microsoft.ML.Apd.Tests.MLNet;

namespace Microsoft.ML.Apd.Tests.Reliability;

/// <summary>Issue #12, point 7: the same rule everywhere, and no misleading message.</summary>
[TestClass]
public sealed class ConsistencyTests
{
    [TestMethod]
    public void ImageShapeWithoutConvolutionsIsStillCheckedAgainstTheFeatureSize()
    {
        var ml = new MLContext(seed: 1);
        var data = ReliabilityData.Task(ml, 0, n: 40);
        var options = ReliabilityData.Options();
        options.ImageShape = (1, 2, 2);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Apd(options).Fit(data, "t0"));
        StringAssert.Contains(e.Message, "ImageShape");
        StringAssert.Contains(e.Message, "needs 4 values, the column has 8");

        options.ImageShape = (1, 2, 4);
        using var model = ml.MulticlassClassification.Trainers.Apd(options).Fit(data, "t0");
        options.ImageShape = (0, 2, 4);
        Assert.AreEqual("ImageShape", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Apd(options)).ParamName);
    }

    [TestMethod]
    public void ATaskIdColumnThatIsAlsoTheLabelOrFeatureColumnIsRejectedNamingIt()
    {
        var ml = new MLContext();
        foreach (var (change, param, mention) in new (Action<ApdTrainer.Options>, string, string)[]
        {
            (o => o.TaskIdColumnName = o.LabelColumnName, "TaskIdColumnName", "also the label column"),
            (o => o.TaskIdColumnName = o.FeatureColumnName, "TaskIdColumnName", "also the feature column"),
            (o => o.LabelColumnName = o.FeatureColumnName, "LabelColumnName", "must be different columns"),
        })
        {
            var o = ReliabilityData.Options();
            change(o);
            var e = Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.Apd(o));
            Assert.AreEqual(param, e.ParamName);
            StringAssert.Contains(e.Message, mention);
        }
        // The catalog shortcut reaches the same check.
        Assert.AreEqual("TaskIdColumnName", Assert.ThrowsExactly<ArgumentException>(
            () => ml.MulticlassClassification.Trainers.Apd(labelColumnName: "Label", taskIdColumnName: "Label")).ParamName);
    }

    [TestMethod]
    public void ADisposedModelRefusesEveryQuery()
    {
        var ml = new MLContext(seed: 1);
        var model = ml.MulticlassClassification.Trainers.Apd(ReliabilityData.Options()).Fit(ReliabilityData.Task(ml, 0, n: 40), "t0");
        model.Dispose();
        Assert.ThrowsExactly<ObjectDisposedException>(() => model.GetClassNames("t0"));
        Assert.ThrowsExactly<ObjectDisposedException>(() => model.ForTask("t0"));
        Assert.ThrowsExactly<ObjectDisposedException>(() => model.Forget("t0"));
        Assert.ThrowsExactly<ObjectDisposedException>(() => model.Tasks.Count);
    }

    [TestMethod]
    public void AModelWithoutTasksSaysSo()
    {
        var ml = new MLContext(seed: 1);
        using var model = ml.MulticlassClassification.Trainers.Apd(ReliabilityData.Options()).Fit(ReliabilityData.Task(ml, 0, n: 40), "t0");
        using var empty = model.Forget("t0");
        var e = Assert.ThrowsExactly<ArgumentException>(() => empty.ForTask("t0"));
        StringAssert.Contains(e.Message, "no task 't0'; it has no tasks.");
        Assert.IsFalse(e.Message.Contains("are: ."), e.Message);
    }
}
