using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Samples.Continual;

/// <summary>One network for all tasks: a shared trunk trained on every task in turn, a new head per task.</summary>
public abstract class SharedTrunkMethod(ExperimentSettings settings) : IContinualMethod
{
    private readonly List<int> _classesPerTask = [];

    protected ExperimentSettings Settings { get; } = settings;
    protected TaskHeadNetwork Network { get; } = new(settings.HiddenLayerSizes);

    public abstract string Name { get; }

    public void Learn(TaskRows rows, IProgress<TrainingStep> progress)
    {
        var task = rows.Task;
        using var train = rows.Materialize();
        var head = Network.AddHead(task.Name, task.ClassNames.Count);
        _classesPerTask.Add(task.ClassNames.Count);
        MiniBatchTraining.Train(images => Network.Forward(task.Name, images), Network.TrunkParameters.Concat(head.parameters()),
            task.Name, train, Settings, progress, Penalty());
        AfterTask(task, train);
    }

    public double Accuracy(TaskRows rows)
    {
        using var test = rows.Materialize();
        return MiniBatchTraining.Accuracy(images => Network.Forward(rows.Task.Name, images), test);
    }

    public double Capacity => (double)Network.ParameterCount / TaskHeadNetwork.BaseParameterCount(Settings.HiddenLayerSizes, _classesPerTask);

    /// <summary>A term added to every batch's loss to protect earlier tasks; null for none.</summary>
    protected virtual Func<Tensor>? Penalty() => null;

    protected virtual void AfterTask(ContinualTask task, TaskData train) { }

    public virtual void Dispose()
    {
        Network.Dispose();
        GC.SuppressFinalize(this);
    }
}
