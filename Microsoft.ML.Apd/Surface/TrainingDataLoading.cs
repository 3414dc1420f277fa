namespace Microsoft.ML.Apd;

/// <summary>How <see cref="ApdTrainer"/> reads a task's rows while training (<see cref="ApdTrainer.Options.DataLoading"/>).</summary>
public enum TrainingDataLoading
{
    /// <summary>In memory when the task's features fit in <see cref="ApdTrainer.Options.InMemoryLimitMegabytes"/>
    /// (rows × features × 4 bytes), streamed otherwise. The default.</summary>
    Auto,

    /// <summary>The task's rows are read once into one contiguous buffer (features as float32, labels as class
    /// indices) and shuffled in full every epoch. Fastest when the task fits in memory.</summary>
    InMemory,

    /// <summary>The task's rows are read from the <see cref="IDataView"/> again every epoch through a shuffle pool of
    /// <see cref="ApdTrainer.Options.ShufflePoolSize"/> rows; memory does not grow with the task's rows.</summary>
    Streaming,
}
