namespace Microsoft.ML.Apd.Samples.Continual;

/// <summary>A continual learner: learns tasks one after another and can be asked about any task learned so far.</summary>
public interface IContinualMethod : IDisposable
{
    string Name { get; }

    /// <summary>Learns the task of <paramref name="train"/> from its training rows.</summary>
    void Learn(TaskRows train, IProgress<TrainingStep> progress);

    /// <summary>Accuracy (0–1) on the test rows of a task learned earlier, told which task it is (task-incremental setting).</summary>
    double Accuracy(TaskRows test);

    /// <summary>Stored parameters ÷ those of one base network (same architecture, one head per task learned).</summary>
    double Capacity { get; }

    /// <summary>Bytes of the model saved as a file now, for methods that save one (APD: its ML.NET .zip); else null.</summary>
    long? SavedBytes => null;
}

/// <summary>Where training of one task stands, reported after every batch.</summary>
public readonly record struct TrainingStep(string Task, int Epoch, int Epochs, int Batch, int Batches, double Loss);
