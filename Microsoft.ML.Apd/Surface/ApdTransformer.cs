using Microsoft.ML.Data;
using Microsoft.ML.Apd.Engine;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Apd;

/// <summary>
/// A trained APD model: one network for all its tasks, with one head per task. Returned by
/// <see cref="ApdTrainer.Fit(IDataView)"/> and its overloads, and by <see cref="Forget"/> and <see cref="ForTask"/>.
/// </summary>
/// <remarks>
/// <para><b>Output columns</b> (names set by the trainer's options). <c>PredictedLabel</c> has the training label's type
/// and values (text labels give text, key labels keep their key type and KeyValues annotation, numbers and booleans stay
/// numbers and booleans). <c>Score</c> holds the row's task's class probabilities, in the order of the task's label set
/// (its distinct label values sorted ascending); its SlotNames annotation names them.</para>
/// <para><b>Routing.</b> Each row goes to the task named in its <see cref="TaskIdColumnName"/> column (text). A row
/// naming an unknown task fails with an <see cref="InvalidOperationException"/> listing the known tasks. In this mixed
/// mode <c>Score</c> is a variable-size vector, since tasks may have different class counts.</para>
/// <para><b>Prediction without a task id.</b> When the input has no task id column (and the model has several tasks),
/// or a row's task id is empty, the row's task is inferred: the task whose training rows the row resembles most wins
/// (highest likelihood under each task's per-feature mean and variance of its training inputs, stored with the task),
/// and only that task's network scores the row. <c>PredictedLabel</c>
/// and <c>Score</c> are then that task's, and two more columns tell which task it was: <c>PredictedTask</c> (text: the
/// row's own task id when it has one) and <c>TaskConfidence</c> (Single in (0, 1]: the inferred task's posterior
/// probability under equal priors; 1 when the row named its task). Models with tasks learned before input models were
/// stored (model format 3 and older) infer by energy instead: every task's network scores the row and the highest
/// logsumexp of its logits wins. Inference is reliable when tasks
/// see different inputs (e.g. permuted pixels, different sites) and weak when they share an input distribution
/// (class-incremental splits of one dataset): see the README. Set <see cref="ApdTrainer.Options.RequireTaskId"/> to
/// require task ids instead. Scoring is batched; <c>MLContext.Log</c> says once per
/// <see cref="Transform"/> when inference is used.</para>
/// <para><b>Single-task views.</b> <see cref="ForTask"/> (or a model with only one task, on input without the task id
/// column) routes every row to one task: <c>Score</c> is then a known-size vector, and when the input has the label
/// column (of the training label type), the output also contains a column of the same name that hides it: the label
/// as a key over the task's classes (KeyValues = the task's class names; labels outside the task become missing). So
/// <c>mlContext.MulticlassClassification.Evaluate(model.ForTask(task).Transform(data))</c> works for every label type,
/// including text.</para>
/// <para><b>Immutability and lifetime.</b> A transformer never changes: training more tasks or forgetting one returns a
/// new transformer with its own copy of the network. Transformers hold native (libtorch) tensors: dispose them when
/// done; a <see cref="ForTask"/> view shares its model's network, which is released when the last of them is
/// disposed. Scoring is thread-safe.</para>
/// </remarks>
public sealed partial class ApdTransformer : ITransformer, IDisposable
{
    private readonly IHostEnvironment _env;
    private readonly SharedNetwork _shared;
    private int _disposed;

    internal ApdTransformer(IHostEnvironment env, SharedNetwork shared, LabelColumnType labelType,
        IReadOnlyDictionary<string, TaskLabelSet> labelSets, ScoringColumns columns, bool requireTaskId, string? selectedTask)
    {
        _env = env;
        _shared = shared;
        LabelType = labelType;
        LabelSets = new Dictionary<string, TaskLabelSet>(labelSets);
        Columns = columns;
        RequireTaskId = requireTaskId;
        SelectedTask = selectedTask;
        if (selectedTask is not null && !LabelSets.ContainsKey(selectedTask))
            throw new InvalidDataException($"Selected task '{selectedTask}' is not a task of the model.");
    }

    /// <summary>The feature column read at prediction time (a known-size vector of Single).</summary>
    public string FeatureColumnName => Columns.Features;

    /// <summary>The label column of training; used at prediction time only by single-task views (see remarks).</summary>
    public string LabelColumnName => Columns.Label;

    /// <summary>The text column naming each row's task.</summary>
    public string TaskIdColumnName => Columns.TaskId;

    /// <summary>The output column of class probabilities (<see cref="ApdTrainer.Options.ScoreColumnName"/>).</summary>
    public string ScoreColumnName => Columns.Score;

    /// <summary>The output column of the predicted label (<see cref="ApdTrainer.Options.PredictedLabelColumnName"/>).</summary>
    public string PredictedLabelColumnName => Columns.PredictedLabel;

    /// <summary>The output column naming the task that scored each row (<see cref="ApdTrainer.Options.PredictedTaskColumnName"/>).</summary>
    public string PredictedTaskColumnName => Columns.PredictedTask;

    /// <summary>The output column of the confidence in <see cref="PredictedTaskColumnName"/> (<see cref="ApdTrainer.Options.TaskConfidenceColumnName"/>).</summary>
    public string TaskConfidenceColumnName => Columns.TaskConfidence;

    /// <summary>True when rows must name their task (<see cref="ApdTrainer.Options.RequireTaskId"/>); false when a
    /// multi-task model infers the task of a row without one.</summary>
    public bool RequireTaskId { get; }

    /// <summary>The task this view predicts (<see cref="ForTask"/>), or null when rows are routed by their task id.</summary>
    public string? SelectedTask { get; }

    /// <summary>The model's tasks in the order they were learned.</summary>
    public IReadOnlyList<string> Tasks => Network.Tasks;

    /// <summary>
    /// Memory in megabytes for the weights scoring derives per task, least recently used tasks dropped beyond it (see
    /// <see cref="ApdTrainer.Options.ScoringCacheMegabytes"/>, which models from <c>Fit</c> start with; a loaded model
    /// starts at the default, 256). Shared with this model's <see cref="ForTask"/> views, inherited by
    /// <see cref="Forget"/>'s model. Changing it changes no prediction.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public int ScoringCacheMegabytes
    {
        get => (int)(Network.WeightCache.BudgetBytes >> 20);
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            Network.WeightCache.BudgetBytes = (long)value << 20;
        }
    }

    /// <summary>Always true: the transformer maps each row on its own, so PredictionEngine works.</summary>
    public bool IsRowToRowMapper => true;

    internal ApdNetwork Network
    {
        get
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            return _shared.Network;
        }
    }

    internal IHostEnvironment Environment => _env;
    internal LabelColumnType LabelType { get; }
    internal Dictionary<string, TaskLabelSet> LabelSets { get; }
    internal ScoringColumns Columns { get; }

    /// <summary>
    /// The classes of <paramref name="task"/> in the order of its <c>Score</c> vector (its label values sorted
    /// ascending; key labels by key, shown by their KeyValues when they have them).
    /// </summary>
    /// <exception cref="ArgumentException">The model has no task of that name.</exception>
    public IReadOnlyList<string> GetClassNames(string task) =>
        GetLabelSet(task).SlotNames.Select(n => n.ToString()).ToArray();

    /// <summary>
    /// A view of this model that predicts <paramref name="task"/> for every row, with no task id column needed;
    /// <c>Score</c> is then a known-size vector and the label is re-exposed as a key (see remarks), so the output can
    /// be evaluated with <c>MulticlassClassification.Evaluate</c>. The view shares this model's network.
    /// </summary>
    /// <exception cref="ArgumentException">The model has no task of that name.</exception>
    public ApdTransformer ForTask(string task)
    {
        GetLabelSet(task);
        return new ApdTransformer(_env, Share(), LabelType, LabelSets, Columns, RequireTaskId, task);
    }

    /// <summary>
    /// Selective forgetting: a new model without <paramref name="task"/>'s parameters. Every other task predicts
    /// exactly as before. This transformer is unchanged.
    /// </summary>
    /// <exception cref="ArgumentException">The model has no task of that name.</exception>
    /// <exception cref="InvalidOperationException">This is a <see cref="ForTask"/> view of that task.</exception>
    public ApdTransformer Forget(string task)
    {
        GetLabelSet(task);
        if (SelectedTask == task)
            throw new InvalidOperationException($"This view predicts task '{task}'; forget it from a model that is not a ForTask view of it.");
        var network = Network.Clone();
        try
        {
            network.Forget(task);
            var labelSets = LabelSets.Where(p => p.Key != task).ToDictionary(p => p.Key, p => p.Value);
            return new ApdTransformer(_env, new SharedNetwork(network), LabelType, labelSets, Columns, RequireTaskId,
                SelectedTask);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>Capacity and parameter counts of the model (see <see cref="ApdModelStatistics"/>).</summary>
    public ApdModelStatistics GetStatistics() => new(Network.GetCapacity(), Tasks);

    /// <summary>The output schema for <paramref name="inputSchema"/>; the same as <see cref="Transform"/> produces.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A needed column is missing or has the wrong type; the message names it.</exception>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new ApdScorer(this, inputSchema).OutputSchema;
    }

    /// <summary>A row-to-row mapper, as used by PredictionEngine.</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new ApdRowMapper(new ApdScorer(this, inputSchema));
    }

    /// <summary>
    /// Scores <paramref name="input"/> lazily: rows are read as the result is enumerated, a block at a time, and each
    /// task's head runs once per block. Nothing is materialised.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A needed column is missing or has the wrong type; the message names it.</exception>
    /// <exception cref="InvalidOperationException">While reading: a row names a task the model does not have.</exception>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new ApdScoredDataView(new ApdScorer(this, input.Schema), input);
    }

    /// <summary>Releases the native tensors (shared with <see cref="ForTask"/> views until the last is disposed).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
            _shared.Release();
    }

    internal SharedNetwork Share()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return _shared.AddReference();
    }

    private TaskLabelSet GetLabelSet(string task)
    {
        ArgumentNullException.ThrowIfNull(task);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return LabelSets.TryGetValue(task, out var set) ? set : throw new ArgumentException(
            $"The model has no task '{task}'; {DescribeTasks(Tasks)}.", nameof(task));
    }

    /// <summary>"its tasks are: 'a', 'b'" or "it has no tasks", for error messages.</summary>
    internal static string DescribeTasks(IReadOnlyCollection<string> tasks) => tasks.Count == 0
        ? "it has no tasks"
        : "its tasks are: " + string.Join(", ", tasks.Select(t => "'" + t + "'"));

    /// <inheritdoc />
    public override string ToString() =>
        $"ApdTransformer({string.Join(", ", Tasks)}{(SelectedTask is null ? "" : "; predicting " + SelectedTask)})";
}
