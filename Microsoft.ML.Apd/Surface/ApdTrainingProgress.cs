namespace Microsoft.ML.Apd;

/// <summary>
/// Where training stands, reported through <see cref="ApdTrainer.Options.Progress"/> after every mini-batch.
/// </summary>
/// <param name="Task">The task being trained.</param>
/// <param name="Epoch">The current epoch, from 1.</param>
/// <param name="NumberOfEpochs">Epochs per task (<see cref="ApdTrainer.Options.NumberOfEpochs"/>).</param>
/// <param name="Batch">The mini-batch just finished within the epoch, from 1.</param>
/// <param name="NumberOfBatches">Mini-batches per epoch.</param>
/// <param name="Loss">The task loss on the batch: the cross-entropy of the task's head before the step. (The sparsity,
/// weight-decay and retroactive terms of the APD objective are not evaluated during training; their gradients are
/// applied directly.)</param>
/// <param name="Elapsed">Wall-clock time since training of <paramref name="Task"/> started.</param>
/// <param name="LearningRate">The learning rate of the step just taken (<see cref="ApdTrainer.Options.LearningRateSchedule"/>).</param>
public readonly record struct ApdTrainingProgress(string Task, int Epoch, int NumberOfEpochs, int Batch,
    int NumberOfBatches, double Loss, TimeSpan Elapsed, double LearningRate);
