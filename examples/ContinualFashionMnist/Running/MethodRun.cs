namespace Microsoft.ML.Apd.Samples.Continual;

/// <summary>What one method did over one task order.</summary>
/// <param name="Tasks">Task names in the order they were learned.</param>
/// <param name="Accuracy">R[i][j]: accuracy on task j after training task i (lower triangle).</param>
/// <param name="Capacity">Capacity after training task i.</param>
/// <param name="TrainingSeconds">Time spent in training only (evaluation excluded).</param>
/// <param name="PeakWorkingSetBytes">Peak working set while this method ran.</param>
/// <param name="PeakIsPerMethod">False when the OS could only report the process's peak so far.</param>
/// <param name="SavedBytes">Size of the saved model after training task i (methods that save one; else null).</param>
public sealed record MethodRun(string Method, string Order, IReadOnlyList<string> Tasks, IReadOnlyList<IReadOnlyList<double>> Accuracy,
    IReadOnlyList<double> Capacity, double TrainingSeconds, long PeakWorkingSetBytes, bool PeakIsPerMethod,
    IReadOnlyList<long?>? SavedBytes = null)
{
    public double FinalAverageAccuracy => ContinualMetrics.FinalAverageAccuracy(Accuracy);
    public double BackwardTransfer => ContinualMetrics.BackwardTransfer(Accuracy);
    public double Forgetting => ContinualMetrics.Forgetting(Accuracy);
    public double FinalCapacity => Capacity[^1];

    /// <summary>Each task's accuracy at the end, by task name (order-independent, for OPD/MOPD).</summary>
    public IReadOnlyDictionary<string, double> FinalAccuracyByTask =>
        Tasks.Select((task, j) => (task, j)).ToDictionary(t => t.task, t => Accuracy[^1][t.j]);
}
