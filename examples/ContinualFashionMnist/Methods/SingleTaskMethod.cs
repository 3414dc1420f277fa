namespace Microsoft.ML.Apd.Samples.Continual;

/// <summary>
/// Single-task learning (STL): an independent network per task. Nothing is forgotten and nothing is shared — the
/// accuracy upper bound, at T times the size.
/// </summary>
public sealed class SingleTaskMethod(ExperimentSettings settings) : IContinualMethod
{
    private readonly Dictionary<string, TaskHeadNetwork> _networks = [];
    private readonly List<int> _classesPerTask = [];

    public string Name => ContinualMethods.Stl;

    public void Learn(TaskRows rows, IProgress<TrainingStep> progress)
    {
        var task = rows.Task;
        using var train = rows.Materialize();
        var network = _networks[task.Name] = new TaskHeadNetwork(settings.HiddenLayerSizes);
        network.AddHead(task.Name, task.ClassNames.Count);
        _classesPerTask.Add(task.ClassNames.Count);
        MiniBatchTraining.Train(images => network.Forward(task.Name, images), network.TrunkParameters.Concat(network.HeadParameters),
            task.Name, train, settings, progress);
    }

    public double Accuracy(TaskRows rows)
    {
        using var test = rows.Materialize();
        return MiniBatchTraining.Accuracy(images => _networks[rows.Task.Name].Forward(rows.Task.Name, images), test);
    }

    public double Capacity =>
        (double)_networks.Values.Sum(n => n.ParameterCount) / TaskHeadNetwork.BaseParameterCount(settings.HiddenLayerSizes, _classesPerTask);

    public void Dispose()
    {
        foreach (var network in _networks.Values) network.Dispose();
    }
}
