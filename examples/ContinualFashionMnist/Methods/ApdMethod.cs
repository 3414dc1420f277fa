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
        o.Progress = progress;
        return o;
    }

    public string Name => ContinualMethods.Apd;

    public void Learn(ContinualTask task, TaskData train, IProgress<TrainingStep> progress)
    {
        _progress = progress;
        var data = ToDataView(task, train);
        var previous = _model;
        _model = _trainer.Fit(data, task.Name);
        _schema = data.Schema;
        // Every Fit returns a new transformer with its own copy of the network; the old one is no longer needed.
        previous?.Dispose();
    }

    public double Accuracy(ContinualTask task, TaskData test)
    {
        using var forTask = Model.ForTask(task.Name);
        var scored = forTask.Transform(ToDataView(task, test));
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
    private IDataView ToDataView(ContinualTask task, TaskData data)
    {
        var pixels = data.Images.data<float>().ToArray();
        var labels = data.Labels.data<long>().ToArray();
        return _ml.Data.LoadFromEnumerable(Rows(pixels, labels, task.ClassNames));
    }

    // Lazily, so ML.NET never needs a second copy of a 60,000-image task as row objects.
    private static IEnumerable<FashionMnistRow> Rows(float[] pixels, long[] labels, IReadOnlyList<string> classNames)
    {
        for (int i = 0; i < labels.Length; i++)
            yield return new FashionMnistRow
            {
                Features = pixels.AsSpan(i * FashionMnist.ImageSize, FashionMnist.ImageSize).ToArray(),
                Label = classNames[(int)labels[i]],
            };
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
