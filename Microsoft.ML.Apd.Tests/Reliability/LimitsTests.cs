using Microsoft.ML;
using Microsoft.ML.Apd.Engine;
using Microsoft.ML.Apd.Tests.MLNet;
using Microsoft.ML.Data;

namespace Microsoft.ML.Apd.Tests.Reliability;

/// <summary>
/// Issue #12, defects 2 and 6: one set of limits (<see cref="ApdLimits"/>) for options, Fit and the loader, so what
/// trains saves and loads; a network too large to train is rejected up front naming the option.
/// </summary>
[TestClass]
public sealed class LimitsTests
{
    public TestContext TestContext { get; set; } = null!;

    private static ArgumentOutOfRangeException RejectedOption(ApdTrainer.Options options, string option, params string[] mentions)
    {
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new MLContext().MulticlassClassification.Trainers.Apd(options));
        Assert.AreEqual(option, e.ParamName);
        StringAssert.Contains(e.Message, option);
        foreach (string m in mentions) StringAssert.Contains(e.Message, m);
        return e;
    }

    [TestMethod]
    public void TooManyHiddenLayersAreRejectedWhenTheTrainerIsCreated()
    {
        var options = ReliabilityData.Options();
        options.HiddenLayerSizes = Enumerable.Repeat(2, ApdLimits.MaxHiddenLayers + 1).ToArray();
        RejectedOption(options, "HiddenLayerSizes", "1025 layers", "at most 1024");
    }

    [TestMethod]
    public void TheLargestLayerCountTrainsSavesAndLoads()
    {
        var ml = new MLContext(seed: 1);
        var options = ReliabilityData.Options();
        options.HiddenLayerSizes = Enumerable.Repeat(2, ApdLimits.MaxHiddenLayers).ToArray();
        var data = ReliabilityData.Task(ml, 0, n: 20);
        using var model = ml.MulticlassClassification.Trainers.Apd(options).Fit(data, "t0");
        string path = Path.Combine(Path.GetTempPath(), $"apd-limits-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.SaveAtomic(model, data.Schema, path); // verifies that the file loads
            using var loaded = (ApdTransformer)ml.Model.Load(path, out _);
            Assert.AreEqual(ApdLimits.MaxHiddenLayers, loaded.Network.Architecture.HiddenLayerSizes.Count);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void AHugeNetworkIsRejectedUpFrontNamingTheOption()
    {
        var options = ReliabilityData.Options();
        options.HiddenLayerSizes = new[] { 1_000_000, 1_000_000 };
        RejectedOption(options, "HiddenLayerSizes", "HiddenLayerSizes[1]", "1000000 × 1000000");

        // Each layer within the tensor limit, but together more than any saved model holds / memory allows.
        options.HiddenLayerSizes = Enumerable.Repeat(16_000, 20).ToArray();
        RejectedOption(options, "HiddenLayerSizes", "GiB");

        var conv = ReliabilityData.Options();
        conv.ImageShape = (1, 20_000, 20_000);
        conv.ConvolutionLayers = new[] { 1_000_000 };
        conv.ConvolutionKernelSize = 30;
        RejectedOption(conv, "ConvolutionLayers", "ConvolutionLayers[0]");
    }

    [TestMethod]
    public void TheFirstLayerIsCheckedAgainstTheFeatureSizeInFitBeforeTraining()
    {
        var ml = new MLContext(seed: 1);
        const int size = 40_000;
        var definition = SchemaDefinition.Create(typeof(WideRow));
        definition["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, size);
        var data = ml.Data.LoadFromEnumerable(new[] { new WideRow { Features = new float[size], Label = "a" }, new WideRow { Features = new float[size], Label = "b" } }, definition);
        var options = ReliabilityData.Options();
        options.HiddenLayerSizes = new[] { 10_000 }; // 10,000 × 40,000 = 4e8 weights > 2^28
        int batches = 0;
        options.Progress = new SyncProgress<ApdTrainingProgress>(_ => batches++);
        var trainer = ml.MulticlassClassification.Trainers.Apd(options);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => trainer.Fit(data, "wide"));
        Assert.AreEqual("HiddenLayerSizes", e.ParamName);
        StringAssert.Contains(e.Message, "HiddenLayerSizes[0]");
        StringAssert.Contains(e.Message, "10000 × 40000");
        Assert.AreEqual(0, batches);
        Assert.IsNull(trainer.LastModel);
    }

    private sealed class WideRow
    {
        public float[] Features { get; set; } = Array.Empty<float>();
        public string Label { get; set; } = "";
    }

    [TestMethod]
    public void TaskAndClassLimitsNameTheTask()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => ApdLimits.CheckTask("t", ApdLimits.MaxTasks, 2, 8, "data"));
        StringAssert.Contains(e.Message, "Task 't'");
        StringAssert.Contains(e.Message, "65,536 tasks");
        e = Assert.ThrowsExactly<ArgumentException>(() => ApdLimits.CheckTask("t", 0, ApdLimits.MaxClasses + 1, 8, "data"));
        StringAssert.Contains(e.Message, "1,048,577 classes");
        e = Assert.ThrowsExactly<ArgumentException>(() => ApdLimits.CheckTask("t", 0, 1 << 20, 1 << 10, "data"));
        StringAssert.Contains(e.Message, "head");
        ApdLimits.CheckTask("t", ApdLimits.MaxTasks - 1, ApdLimits.MaxClasses, 256, "data"); // at the limits: fine
    }

    [TestMethod]
    public void MoreTasksThanAModelHoldsAreRejectedInFitBeforeTraining()
    {
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, ApdLimits.MaxTasks + 1).SelectMany(t => new[]
        {
            new TinyData.TextRow { Features = new float[TinyData.Size], Label = "a", TaskId = "t" + t },
            new TinyData.TextRow { Features = new float[TinyData.Size], Label = "b", TaskId = "t" + t },
        });
        var options = ReliabilityData.Options();
        int batches = 0;
        options.Progress = new SyncProgress<ApdTrainingProgress>(_ => batches++);
        var trainer = ml.MulticlassClassification.Trainers.Apd(options);
        var e = Assert.ThrowsExactly<ArgumentException>(() => trainer.Fit(ml.Data.LoadFromEnumerable(rows)));
        StringAssert.Contains(e.Message, "Task 't65536'");
        StringAssert.Contains(e.Message, "at most 65,536 tasks");
        Assert.AreEqual(0, batches);
    }

    [TestMethod]
    public void SaveAtomicRefusesAFileThatDoesNotLoad()
    {
        var ml = new MLContext(seed: 1);
        var data = ReliabilityData.Task(ml, 0, n: 40);
        using var model = ml.MulticlassClassification.Trainers.Apd(ReliabilityData.Options()).Fit(data, "t0");
        string directory = Path.Combine(Path.GetTempPath(), $"apd-verify-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        try
        {
            string path = Path.Combine(directory, "model.zip");
            ml.Model.SaveAtomic(model, data.Schema, path);
            byte[] good = File.ReadAllBytes(path);
            // A model whose saved label set no longer matches its network: the zip is perfect, the model does not load.
            model.LabelSets["t0"] = new TaskLabelSet(model.LabelType, new object[] { "a0", "b0", "c0" });
            var e = Assert.ThrowsExactly<IOException>(() => ml.Model.SaveAtomic(model, data.Schema, path));
            StringAssert.Contains(e.Message, "does not load");
            StringAssert.Contains(e.Message, "label set");
            CollectionAssert.AreEqual(good, File.ReadAllBytes(path), "the previous file was replaced");
            Assert.AreEqual(1, Directory.GetFiles(directory).Length, "temporary file left behind");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [TestMethod]
    public void PayloadSizeIsWhatSaveWrites()
    {
        var ml = new MLContext(seed: 1);
        using var model = ml.MulticlassClassification.Trainers.Apd(ReliabilityData.Options()).Fit(ReliabilityData.Task(ml, 0), "t0");
        Assert.AreEqual(model.SerializePayload().LongLength, model.PayloadSize());
    }
}
