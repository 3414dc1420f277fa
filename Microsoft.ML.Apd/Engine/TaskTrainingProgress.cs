namespace Microsoft.ML.Apd.Engine;

/// <summary>Where training of one task stands; reported after every batch.</summary>
internal readonly record struct TaskTrainingProgress(string Task, int Epoch, int NumberOfEpochs, int Batch,
    int NumberOfBatches, double Loss, TimeSpan Elapsed, double LearningRate);
