using Microsoft.ML.Apd.Engine;
using Microsoft.ML.Apd.Persistence;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd;

/// <summary>
/// Continual-learning multiclass trainer: Additive Parameter Decomposition (APD, Yoon et al., ICLR 2020). Learns task
/// after task into one network whose parameters are θ_t = σ ⊙ M_t + τ_t (shared σ, per-task mask M_t and sparse τ_t),
/// without forgetting earlier tasks and without a full copy of the model per task. Create it with
/// <c>mlContext.MulticlassClassification.Trainers.Apd(...)</c>.
/// </summary>
/// <remarks>
/// <para><b>Input columns.</b> Features: known-size vector of <see cref="float"/> (of size C·H·W with convolution
/// layers). Label: key, text, boolean or numeric; each task has its own label set (its distinct values, sorted
/// ascending). Task id (optional, text): one task per distinct value, trained in order of first appearance.</para>
/// <para><b>Continuing.</b> Every <c>Fit</c> appends new tasks to a copy of a previous model: the one passed in, or
/// else this trainer's last model. Earlier transformers never change. Fitting a task name the previous model already
/// has throws <see cref="InvalidOperationException"/> naming the task.</para>
/// <para><b>Logging, cancellation, device.</b> Progress goes to <c>MLContext.Log</c> once per epoch and to
/// <see cref="Options.Progress"/> after every batch. A <see cref="CancellationToken"/> passed to a <c>Fit</c>
/// overload, or <c>MLContext.CancelExecution()</c>, stops training at the next batch with
/// <see cref="OperationCanceledException"/>. A <c>Fit</c> that is cancelled or throws for any reason changes nothing: the
/// trainer's last model and every transformer returned earlier stay intact and usable (training runs on a copy). <c>MLContext.GpuDeviceId</c>
/// selects a CUDA device; without CUDA, <c>MLContext.FallbackToCpu</c> decides between CPU and an error.</para>
/// <para><b>Threads.</b> <c>Fit</c> is safe to call from several threads: calls on one trainer run one after another, each
/// continuing the model of the one before.</para>
/// <para><b>Errors.</b> See the README's "Errors and limits" for every documented error and limit.</para>
/// </remarks>
public sealed partial class ApdTrainer : IEstimator<ApdTransformer>
{
    private readonly IHostEnvironment _env;
    private readonly IHost _host;
    private readonly Options _options;
    private readonly object _sync = new();
    private ApdTransformer? _lastModel;

    internal ApdTrainer(IHostEnvironment env, Options options)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _env = env;
        _host = env.Register(nameof(ApdTrainer));
        _options = options.Snapshot();
    }

    /// <summary>The model of this trainer's last successful <c>Fit</c>, which the next <c>Fit</c> continues; null before the first.</summary>
    public ApdTransformer? LastModel
    {
        get { lock (_sync) return _lastModel; }
    }

    /// <summary>
    /// Trains the data's tasks: one per distinct value of <see cref="Options.TaskIdColumnName"/> in order of first
    /// appearance, or, without that column, one task named <see cref="Options.TaskId"/>. Continues this trainer's last model.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or has the wrong type; the message names it.</exception>
    /// <exception cref="ArgumentException">No usable rows, or a task with fewer than two classes; the message names it.</exception>
    /// <exception cref="InvalidOperationException">A task of the data already exists in the model continued.</exception>
    /// <exception cref="OperationCanceledException"><c>MLContext.CancelExecution()</c> was called.</exception>
    /// <exception cref="NotFiniteNumberException">Training diverged (NaN or infinite loss or parameters); the message names the task, the epoch and the likely cause (learning rate, unnormalized features). Nothing was changed.</exception>
    public ApdTransformer Fit(IDataView input) => FitCore(input, taskId: null, previous: null, CancellationToken.None);

    /// <summary>Like <see cref="Fit(IDataView)"/>, stopping at the next mini-batch when <paramref name="cancellationToken"/>
    /// is cancelled; this trainer's last model and every earlier transformer are then unchanged.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or has the wrong type; the message names it.</exception>
    /// <exception cref="ArgumentException">No usable rows, or a task with fewer than two classes; the message names it.</exception>
    /// <exception cref="InvalidOperationException">A task of the data already exists in the model continued.</exception>
    /// <exception cref="OperationCanceledException">The token or the MLContext was cancelled.</exception>
    /// <exception cref="NotFiniteNumberException">Training diverged (NaN or infinite loss or parameters); the message names the task, the epoch and the likely cause (learning rate, unnormalized features). Nothing was changed.</exception>
    public ApdTransformer Fit(IDataView input, CancellationToken cancellationToken)
        => FitCore(input, taskId: null, previous: null, cancellationToken);

    /// <summary>Trains all rows of <paramref name="input"/> as one new task named <paramref name="taskId"/> (the task id
    /// column, if any, is ignored), continuing this trainer's last model.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or has the wrong type; the message names it.</exception>
    /// <exception cref="ArgumentException">No usable rows, or fewer than two classes; the message names the task.</exception>
    /// <exception cref="InvalidOperationException">The model continued already has a task named <paramref name="taskId"/>.</exception>
    /// <exception cref="OperationCanceledException"><c>MLContext.CancelExecution()</c> was called.</exception>
    /// <exception cref="NotFiniteNumberException">Training diverged (NaN or infinite loss or parameters); the message names the task, the epoch and the likely cause (learning rate, unnormalized features). Nothing was changed.</exception>
    public ApdTransformer Fit(IDataView input, string taskId) => Fit(input, taskId, CancellationToken.None);

    /// <summary>Like <see cref="Fit(IDataView, string)"/>, stopping at the next mini-batch when
    /// <paramref name="cancellationToken"/> is cancelled; this trainer's last model is then unchanged.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or has the wrong type; the message names it.</exception>
    /// <exception cref="ArgumentException">No usable rows, or fewer than two classes; the message names the task.</exception>
    /// <exception cref="InvalidOperationException">The model continued already has a task named <paramref name="taskId"/>.</exception>
    /// <exception cref="OperationCanceledException">The token or the MLContext was cancelled.</exception>
    /// <exception cref="NotFiniteNumberException">Training diverged (NaN or infinite loss or parameters); the message names the task, the epoch and the likely cause (learning rate, unnormalized features). Nothing was changed.</exception>
    public ApdTransformer Fit(IDataView input, string taskId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(taskId);
        Options.CheckTaskName(taskId, "the taskId argument", nameof(taskId));
        return FitCore(input, taskId, previous: null, cancellationToken);
    }

    /// <summary>Trains all rows of <paramref name="input"/> as one new task named <paramref name="taskId"/>, continuing
    /// from <paramref name="previous"/> (any model, e.g. one loaded from disk), which is not changed.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or has the wrong type; the message names it.</exception>
    /// <exception cref="ArgumentException">No usable rows, or fewer than two classes; the message names the task.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="previous"/> already has a task named <paramref name="taskId"/>.</exception>
    /// <exception cref="OperationCanceledException"><c>MLContext.CancelExecution()</c> was called.</exception>
    /// <exception cref="NotFiniteNumberException">Training diverged (NaN or infinite loss or parameters); the message names the task, the epoch and the likely cause (learning rate, unnormalized features). Nothing was changed.</exception>
    public ApdTransformer Fit(IDataView input, string taskId, ApdTransformer previous)
        => Fit(input, taskId, previous, CancellationToken.None);

    /// <summary>Like <see cref="Fit(IDataView, string, ApdTransformer)"/>, stopping at the next mini-batch when
    /// <paramref name="cancellationToken"/> is cancelled; <paramref name="previous"/> and this trainer's last model are
    /// then unchanged.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or has the wrong type; the message names it.</exception>
    /// <exception cref="ArgumentException">No usable rows, or fewer than two classes; the message names the task.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="previous"/> already has a task named <paramref name="taskId"/>.</exception>
    /// <exception cref="OperationCanceledException">The token or the MLContext was cancelled.</exception>
    /// <exception cref="NotFiniteNumberException">Training diverged (NaN or infinite loss or parameters); the message names the task, the epoch and the likely cause (learning rate, unnormalized features). Nothing was changed.</exception>
    public ApdTransformer Fit(IDataView input, string taskId, ApdTransformer previous, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(taskId);
        Options.CheckTaskName(taskId, "the taskId argument", nameof(taskId));
        ArgumentNullException.ThrowIfNull(previous);
        return FitCore(input, taskId, previous, cancellationToken);
    }

    /// <summary>Like <see cref="Fit(IDataView)"/>, continuing from <paramref name="previous"/>, which is not changed.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or has the wrong type; the message names it.</exception>
    /// <exception cref="ArgumentException">No usable rows, or a task with fewer than two classes; the message names it.</exception>
    /// <exception cref="InvalidOperationException">A task of the data already exists in <paramref name="previous"/>.</exception>
    /// <exception cref="OperationCanceledException"><c>MLContext.CancelExecution()</c> was called.</exception>
    /// <exception cref="NotFiniteNumberException">Training diverged (NaN or infinite loss or parameters); the message names the task, the epoch and the likely cause (learning rate, unnormalized features). Nothing was changed.</exception>
    public ApdTransformer Fit(IDataView input, ApdTransformer previous) => Fit(input, previous, CancellationToken.None);

    /// <summary>Like <see cref="Fit(IDataView, ApdTransformer)"/>, stopping at the next mini-batch when
    /// <paramref name="cancellationToken"/> is cancelled; <paramref name="previous"/> and this trainer's last model are
    /// then unchanged.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or has the wrong type; the message names it.</exception>
    /// <exception cref="ArgumentException">No usable rows, or a task with fewer than two classes; the message names it.</exception>
    /// <exception cref="InvalidOperationException">A task of the data already exists in <paramref name="previous"/>.</exception>
    /// <exception cref="OperationCanceledException">The token or the MLContext was cancelled.</exception>
    /// <exception cref="NotFiniteNumberException">Training diverged (NaN or infinite loss or parameters); the message names the task, the epoch and the likely cause (learning rate, unnormalized features). Nothing was changed.</exception>
    public ApdTransformer Fit(IDataView input, ApdTransformer previous, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(previous);
        return FitCore(input, taskId: null, previous, cancellationToken);
    }

    private ApdTransformer FitCore(IDataView data, string? taskId, ApdTransformer? previous, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(data);
        cancellation.ThrowIfCancellationRequested();
        lock (_sync)
        {
            var o = _options;
            previous ??= _lastModel;
            using var ch = _host.Start("Training");

            // Schema first, before reading or training anything.
            var schema = data.Schema;
            var previousNetwork = previous?.Network;
            var features = SchemaChecks.FeatureColumn(schema, o.FeatureColumnName,
                previousNetwork?.Architecture.InputSize, nameof(data));
            int inputSize = ((VectorDataViewType)features.Type).Size;
            var architecture = previousNetwork?.Architecture ?? o.ToArchitecture(inputSize);
            SchemaChecks.ImageLayout(features, architecture.Image ?? o.ImageLayout, nameof(data));
            ApdLimits.CheckArchitecture(architecture, ApdLimits.AvailableBytes);
            var (label, labelType) = SchemaChecks.LabelColumn(schema, o.LabelColumnName, previous?.LabelType, nameof(data));
            var taskColumn = taskId is null ? SchemaChecks.TaskIdColumn(schema, o.TaskIdColumnName, nameof(data)) : null;
            if (taskId is not null) RejectExisting(previous, taskId);

            // First pass: each task's rows and labels, no rows kept.
            var labelIds = LabelValueIds.Create(labelType, label);
            var rows = new TrainingRows(data, features, label, labelIds, taskId is null ? taskColumn : null, taskId ?? o.TaskId, _env, cancellation);
            var tasks = rows.Survey(ch);
            var labelSets = new Dictionary<string, TaskLabelSet>(previous?.LabelSets ?? new Dictionary<string, TaskLabelSet>());
            foreach (var task in tasks)
            {
                RejectExisting(previous, task.Task);
                Options.CheckTaskName(task.Task, $"task id column '{o.TaskIdColumnName}'", nameof(data));
                var set = new TaskLabelSet(labelType, task.LabelIds.Select(id => labelIds.Values[id]));
                if (set.Count < 2)
                    throw new ArgumentException(
                        $"Task '{task.Task}' has {set.Count} distinct value(s) in label column '{label.Name}'; a task needs at least two classes.", nameof(data));
                if (set.Values.OfType<string>().FirstOrDefault(v => !ApdLimits.IsValidText(v)) is { } invalid)
                    throw new ArgumentException(
                        $"Task '{task.Task}': the label '{invalid}' in label column '{label.Name}' is not valid UTF-16 (it has a lone surrogate character) and would change when saved.", nameof(data));
                ApdLimits.CheckTask(task.Task, labelSets.Count, set.Count, architecture.HeadInputSize, nameof(data));
                labelSets.Add(task.Task, set);
            }

            int seed = o.Seed ?? MLNetInternal.Seed(_env) ?? Random.Shared.Next();
            var hyperparameters = o.ToHyperparameters(seed);
            var network = previousNetwork?.Clone()
                ?? ApdNetwork.Create(architecture, DeviceSelection.Select(_env, ch), seed);
            try
            {
                foreach (var task in tasks)
                    TrainTask(network, rows, task, labelSets[task.Task], hyperparameters, ch, cancellation);
            }
            catch
            {
                network.Dispose();
                throw;
            }

            network.WeightCache.BudgetBytes = (long)o.ScoringCacheMegabytes << 20;
            var model = new ApdTransformer(_env, new SharedNetwork(network), labelType, labelSets, ScoringColumns.From(o),
                o.RequireTaskId, selectedTask: null);
            // Every model Fit returns can be saved (and so loaded): its stored size is within the loader's limit. The
            // bound costs a look at each tensor's shape; the exact size, a serialisation, is needed only near the limit.
            long size;
            if (model.PayloadSizeBound() > ApdLimits.MaxModelBytes && (size = model.PayloadSize()) > ApdLimits.MaxModelBytes)
            {
                model.Dispose();
                throw new InvalidOperationException(
                    $"With task '{tasks[^1].Task}' the model would take {size / (double)(1L << 30):F2} GiB saved; a model holds at most " +
                    $"{ApdLimits.MaxModelBytes / (double)(1L << 30):F2} GiB. Continue from an earlier model with fewer tasks, or use smaller " +
                    "HiddenLayerSizes or a larger SparsityStrength (λ₁, sparser τ per task). Nothing was changed.");
            }
            _lastModel = model;
            return model;
        }
    }

    private static void RejectExisting(ApdTransformer? previous, string task)
    {
        if (previous is not null && previous.LabelSets.ContainsKey(task))
            throw new InvalidOperationException(
                $"The model already has a task named '{task}'. APD learns each task once; use a new task name (tasks: {string.Join(", ", previous.Tasks)}).");
    }

    private void TrainTask(ApdNetwork network, TrainingRows rows, TaskSurvey task, TaskLabelSet labels, ApdHyperparameters hyperparameters,
        IChannel ch, CancellationToken cancellation)
    {
        var classOfLabelId = rows.Labels.Values.Select(labels.IndexOf).ToArray();
        ch.Info($"APD: training task '{task.Task}' ({task.RowCount} rows, {labels.Count} classes, {hyperparameters.NumberOfEpochs} epochs) on {network.Device}.");
        var started = DateTime.UtcNow;
        var source = TaskBatchSources.Create(rows, task, classOfLabelId, labels.Count, _options.DataLoading,
            _options.InMemoryLimitMegabytes, _options.ShufflePoolSize, network.Device, ch);
        using (source as IDisposable)
            ApdLearner.LearnTask(network, task.Task, labels.Count, source, hyperparameters, new ProgressReporter(this, ch), cancellation);
        ch.Info($"APD: task '{task.Task}' trained in {(DateTime.UtcNow - started).TotalSeconds:F1} s.");
    }

    /// <summary>
    /// Receives the engine's per-batch progress synchronously on the training thread: stops training when the
    /// MLContext was cancelled, forwards to <see cref="Options.Progress"/>, and logs once per epoch.
    /// </summary>
    private sealed class ProgressReporter : IProgress<TaskTrainingProgress>
    {
        private readonly ApdTrainer _trainer;
        private readonly IChannel _channel;
        private int _loggedEpoch = int.MinValue;

        public ProgressReporter(ApdTrainer trainer, IChannel channel)
        {
            _trainer = trainer;
            _channel = channel;
        }

        public void Report(TaskTrainingProgress p)
        {
            if (MLNetInternal.IsCanceled(_trainer._env))
                throw new OperationCanceledException("Operation was canceled.");
            _trainer._options.Progress?.Report(new ApdTrainingProgress(p.Task, p.Epoch, p.NumberOfEpochs, p.Batch,
                p.NumberOfBatches, p.Loss, p.Elapsed, p.LearningRate));
            if (p.Batch >= p.NumberOfBatches && p.Epoch != _loggedEpoch)
            {
                _loggedEpoch = p.Epoch;
                _channel.Info($"APD: task '{p.Task}' epoch {p.Epoch}/{p.NumberOfEpochs}: cross-entropy {p.Loss:F4} on the last batch, learning rate {p.LearningRate:G3}, {p.Elapsed.TotalSeconds:F1} s.");
            }
        }
    }

    /// <summary>
    /// The columns <see cref="Fit(IDataView)"/>'s model adds (named by the options): <c>PredictedLabel</c> (the label's
    /// type), <c>Score</c> (a vector of Single: known size when every row goes to one task, i.e. the input has no task id
    /// column and this trainer has no earlier model; variable size otherwise), and either, in that single-task case, the
    /// label as a key, or, when a row's task may be inferred, <c>PredictedTask</c> (text) and <c>TaskConfidence</c>
    /// (Single). The routing rules are those of the model itself (see <see cref="ApdTransformer"/>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or has the wrong type; the message names it.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var o = _options;
        SchemaChecks.FeatureColumn(inputSchema, o.FeatureColumnName, nameof(inputSchema));
        var label = SchemaChecks.LabelColumn(inputSchema, o.LabelColumnName, nameof(inputSchema));
        // The model Fit returns: the previous model's tasks plus at least one new task.
        var routing = TaskRouting.KindOf(selectedTask: null,
            SchemaChecks.HasTaskIdColumn(inputSchema, o.TaskIdColumnName, nameof(inputSchema)),
            taskCount: (LastModel?.Tasks.Count ?? 0) + 1);
        bool mixed = routing != TaskRoutingKind.Fixed;

        var text = TextDataViewType.Instance;
        var scoreKinds = new[]
        {
            MLNetInternal.ShapeColumn(AnnotationUtils.Kinds.ScoreColumnKind, SchemaShape.Column.VectorKind.Scalar, text, false),
            MLNetInternal.ShapeColumn(AnnotationUtils.Kinds.ScoreValueKind, SchemaShape.Column.VectorKind.Scalar, text, false),
        };
        var predictedAnnotations = label.IsKey && label.Annotations.TryFindColumn(AnnotationUtils.Kinds.KeyValues, out var keyValues)
            ? new SchemaShape(new[] { keyValues }.Concat(scoreKinds))
            : new SchemaShape(scoreKinds);
        var slotNames = MLNetInternal.ShapeColumn(AnnotationUtils.Kinds.SlotNames, SchemaShape.Column.VectorKind.Vector, text, false);
        var result = inputSchema.ToDictionary(c => c.Name);
        result[o.PredictedLabelColumnName] = MLNetInternal.ShapeColumn(o.PredictedLabelColumnName,
            SchemaShape.Column.VectorKind.Scalar, label.ItemType, label.IsKey, predictedAnnotations);
        result[o.ScoreColumnName] = MLNetInternal.ShapeColumn(o.ScoreColumnName,
            mixed ? SchemaShape.Column.VectorKind.VariableVector : SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false,
            new SchemaShape(mixed ? scoreKinds : new[] { slotNames }.Concat(scoreKinds)));
        if (TaskRouting.HasInference(routing, o.RequireTaskId))
        {
            result[o.PredictedTaskColumnName] = MLNetInternal.ShapeColumn(o.PredictedTaskColumnName,
                SchemaShape.Column.VectorKind.Scalar, TextDataViewType.Instance, false);
            result[o.TaskConfidenceColumnName] = MLNetInternal.ShapeColumn(o.TaskConfidenceColumnName,
                SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false);
        }
        if (!mixed)
            result[o.LabelColumnName] = MLNetInternal.ShapeColumn(o.LabelColumnName, SchemaShape.Column.VectorKind.Scalar,
                NumberDataViewType.UInt32, true,
                new SchemaShape(new[] { MLNetInternal.ShapeColumn(AnnotationUtils.Kinds.KeyValues, SchemaShape.Column.VectorKind.Vector, text, false) }));
        return new SchemaShape(result.Values);
    }
}
