using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Apd.Samples.Continual;

/// <summary>
/// APD (Yoon et al., ICLR 2020) through the library's public ML.NET API, exactly as an application would use it:
/// one <see cref="ApdTrainer"/> fitted task after task, text labels, evaluation with ML.NET's multiclass evaluator.
/// </summary>
public sealed class ApdMethod : IContinualMethod
{
    private readonly MLContext _ml;
    private readonly ApdTrainer _trainer;
    private IProgress<TrainingStep>? _progress;
    private ApdTransformer? _model;
    private DataViewSchema? _schema;

    public ApdMethod(ExperimentSettings settings)
    {
        _ml = new MLContext(seed: settings.Seed);
        _trainer = _ml.MulticlassClassification.Trainers.Apd(Options(settings, new ForwardingProgress(this)));
    }

    /// <summary>The run's APD options: the preset, the shared training settings, then any option given explicitly.</summary>
    public static ApdTrainer.Options Options(ExperimentSettings settings, IProgress<ApdTrainingProgress>? progress = null)
    {
        var o = settings.ApdPreset == ApdPreset.Paper ? ApdTrainer.Options.Paper() : new ApdTrainer.Options();
        o.HiddenLayerSizes = settings.HiddenLayerSizes.ToArray();
        o.NumberOfEpochs = settings.Epochs;
        o.BatchSize = settings.BatchSize;
        o.LearningRate = settings.LearningRate;
        o.Seed = settings.Seed;
        o.RetroactiveUpdate = settings.ApdRetroactiveUpdate;
        o.SparsityStrength = settings.ApdSparsityStrength;
        o.TrainFirstTaskAdaptive = settings.ApdTrainFirstTaskAdaptive ?? o.TrainFirstTaskAdaptive;
        o.AdaptiveStartsAtZero = settings.ApdAdaptiveStartsAtZero ?? o.AdaptiveStartsAtZero;
        o.ProximalStrength = settings.ApdProximalStrength ?? o.ProximalStrength;
        o.InitialMaskLogit = settings.ApdInitialMaskLogit is { } logit ? (double.IsNaN(logit) ? null : logit) : o.InitialMaskLogit;
        o.HalfPrecisionStorage = settings.ApdHalfPrecisionStorage ?? o.HalfPrecisionStorage;
        o.LowRankAdaptiveRank = settings.ApdLowRankRank ?? o.LowRankAdaptiveRank;
        o.LowRankAdaptiveLayers = settings.ApdLowRankLayers ?? o.LowRankAdaptiveLayers;
        o.LowRankKeptEnergy = settings.ApdLowRankKeptEnergy ?? o.LowRankKeptEnergy;
        o.LowRankLearningRateMultiplier = settings.ApdLowRankLearningRateMultiplier ?? o.LowRankLearningRateMultiplier;
        o.LowRankLearningRateSchedule = settings.ApdLowRankLearningRateSchedule ?? o.LowRankLearningRateSchedule;
        o.LearningRateSchedule = settings.ApdLearningRateSchedule ?? o.LearningRateSchedule;
        o.LearningRateDecay = settings.ApdLearningRateDecay ?? o.LearningRateDecay;
        o.Progress = progress;
        return o;
    }

    public string Name => ContinualMethods.Apd;

    public void Learn(TaskRows train, IProgress<TrainingStep> progress)
    {
        _progress = progress;
        var data = ToDataView(train);
        var previous = _model;
        _model = _trainer.Fit(data, train.Task.Name);
        _schema = data.Schema;
        // Every Fit returns a new transformer with its own copy of the network; the old one is no longer needed.
        previous?.Dispose();
    }

    public double Accuracy(TaskRows test)
    {
        using var forTask = Model.ForTask(test.Task.Name);
        var scored = forTask.Transform(ToDataView(test));
        return _ml.MulticlassClassification.Evaluate(scored).MicroAccuracy;
    }

    public double Capacity => Model.GetStatistics().Capacity;

    public long? SavedBytes
    {
        get
        {
            using var stream = new MemoryStream();
            _ml.Model.Save(Model, _schema, stream);
            return stream.Length;
        }
    }

    /// <summary>Saves the model with all tasks learned so far as an ML.NET .zip.</summary>
    public void Save(string path) => _ml.Model.Save(Model, _schema, path);

    private ApdTransformer Model => _model ?? throw new InvalidOperationException("No task learned yet.");

    /// <summary>The task's images as ML.NET rows: Features (784 floats) and Label (the class name as text).</summary>
    private IDataView ToDataView(TaskRows rows) => _ml.Data.LoadFromEnumerable(Rows(rows));

    // Lazily, a chunk of images at a time: neither the task's images nor a row object per image is ever held. Each
    // enumeration (one per ML.NET cursor; Transform reads with two at once) fills one row of its own, which is safe
    // because ML.NET's getters copy the current row's values out while their cursor is on it.
    private static IEnumerable<FashionMnistRow> Rows(TaskRows rows)
    {
        var row = new FashionMnistRow { Features = new float[FashionMnist.ImageSize] };
        foreach (var chunk in rows.Chunks())
        {
            using var pixels = chunk.Images.data<float>();
            using var labels = chunk.Labels.data<long>();
            for (int i = 0; i < chunk.Count; i++)
            {
                pixels.CopyTo(row.Features, tensorIndex: (long)i * FashionMnist.ImageSize);
                row.Label = rows.Task.ClassNames[(int)labels[i]];
                yield return row;
            }
        }
    }

    public void Dispose() => _model?.Dispose();

    // The trainer's options are fixed at creation; progress goes to whichever run is learning now.
    private sealed class ForwardingProgress(ApdMethod method) : IProgress<ApdTrainingProgress>
    {
        public void Report(ApdTrainingProgress p) =>
            method._progress?.Report(new TrainingStep(p.Task, p.Epoch, p.NumberOfEpochs, p.Batch, p.NumberOfBatches, p.Loss));
    }
}

/// <summary>One Fashion-MNIST image as an ML.NET row.</summary>
public sealed class FashionMnistRow
{
    [VectorType(FashionMnist.ImageSize)]
    public float[] Features { get; set; } = [];

    public string Label { get; set; } = "";
}
