using Microsoft.ML.Apd;
using Microsoft.ML.Apd.Persistence;
using Defaults = Microsoft.ML.Apd.ApdTrainer.Options.Defaults;

namespace Microsoft.ML;

/// <summary>Creates the APD continual-learning trainer from <c>mlContext.MulticlassClassification.Trainers</c>.</summary>
public static class ApdCatalog
{
    /// <summary>Creates an <see cref="ApdTrainer"/> with the given options (checked now; see <see cref="ApdTrainer.Options"/>).</summary>
    /// <param name="catalog">The multiclass classification trainer catalog.</param>
    /// <param name="options">Columns, architecture and the APD hyperparameters.</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range; the message names it.</exception>
    /// <exception cref="ArgumentException">An option is inconsistent (e.g. convolution layers without an image shape).</exception>
    public static ApdTrainer Apd(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        ApdTrainer.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        MLNetInternal.EnsureAvailable();
        var env = MLNetInternal.GetEnvironment(catalog);
        TorchSharpLoader.Report(env);
        return new ApdTrainer(env, options);
    }

    /// <summary>Creates an <see cref="ApdTrainer"/> with the most used options; the others keep their defaults.</summary>
    /// <param name="catalog">The multiclass classification trainer catalog.</param>
    /// <param name="labelColumnName">The label column (key, text, boolean or numeric).</param>
    /// <param name="featureColumnName">The feature column (known-size vector of Single).</param>
    /// <param name="taskIdColumnName">The text column naming each row's task.</param>
    /// <param name="numberOfEpochs">Epochs per task.</param>
    /// <param name="hiddenLayerSizes">Fully-connected hidden layer sizes; null for the default { 256, 128 }.</param>
    /// <param name="batchSize">Mini-batch size.</param>
    /// <param name="learningRate">Adam learning rate.</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range; the message names it.</exception>
    public static ApdTrainer Apd(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = Defaults.LabelColumnName, string featureColumnName = Defaults.FeatureColumnName,
        string taskIdColumnName = Defaults.TaskIdColumnName, int numberOfEpochs = Defaults.NumberOfEpochs,
        int[]? hiddenLayerSizes = null, int batchSize = Defaults.BatchSize, double learningRate = Defaults.LearningRate)
    {
        var options = new ApdTrainer.Options
        {
            LabelColumnName = labelColumnName,
            FeatureColumnName = featureColumnName,
            TaskIdColumnName = taskIdColumnName,
            NumberOfEpochs = numberOfEpochs,
            BatchSize = batchSize,
            LearningRate = learningRate,
        };
        if (hiddenLayerSizes is not null) options.HiddenLayerSizes = hiddenLayerSizes;
        return Apd(catalog, options);
    }
}
