using Microsoft.ML.Data;

namespace Microsoft.ML.Apd;

/// <summary>How an <see cref="ApdTransformer"/> bound to an input schema decides which task scores a row.</summary>
internal enum TaskRoutingKind
{
    /// <summary>Every row goes to one task: a <see cref="ApdTransformer.ForTask"/> view, or a single-task model scoring
    /// input without the task id column. <c>Score</c> has a known size and the label can be re-exposed as a key.</summary>
    Fixed,

    /// <summary>Each row goes to the task named in its task id column; a row whose id is missing (empty) gets its task
    /// inferred, unless the model requires task ids.</summary>
    Column,

    /// <summary>The input has no task id column and the model has several tasks: each row's task is inferred.</summary>
    Inferred,
}

/// <summary>
/// The one home of task routing: which task scores each row of one input schema. Built once when a transformer binds
/// to a schema (<see cref="Bind"/>) and used by the scorer, the row mapper and the output schema; the estimator's
/// <see cref="ApdTrainer.GetOutputSchema"/> uses the same rules (<see cref="KindOf"/>, <see cref="HasInference"/>)
/// before any model exists. A row whose task is inferred is scored by <see cref="Engine.TaskInference"/>.
/// </summary>
internal sealed class TaskRouting
{
    private readonly IReadOnlySet<string> _tasks;
    private readonly IReadOnlyList<string> _taskOrder;

    private TaskRouting(TaskRoutingKind kind, string? fixedTask, DataViewSchema.Column? taskColumn, bool canInfer,
        IReadOnlySet<string> tasks, IReadOnlyList<string> taskOrder)
    {
        Kind = kind;
        FixedTask = fixedTask;
        TaskColumn = taskColumn;
        CanInfer = canInfer;
        _tasks = tasks;
        _taskOrder = taskOrder;
    }

    public TaskRoutingKind Kind { get; }

    /// <summary>True when some rows may get an inferred task (<see cref="HasInference"/>): the output then names each
    /// row's task and the confidence in it.</summary>
    public bool CanInfer { get; }

    /// <summary>The task every row goes to (<see cref="TaskRoutingKind.Fixed"/> only).</summary>
    public string? FixedTask { get; }

    /// <summary>The text column naming each row's task (<see cref="TaskRoutingKind.Column"/> only).</summary>
    public DataViewSchema.Column? TaskColumn { get; }

    /// <summary>
    /// The routing rule, in one place: a selected task (<see cref="ApdTransformer.ForTask"/>) wins; else a task id column
    /// routes; else a model with one task predicts that task; else the task is inferred.
    /// </summary>
    public static TaskRoutingKind KindOf(string? selectedTask, bool hasTaskIdColumn, int taskCount) =>
        selectedTask is not null ? TaskRoutingKind.Fixed
        : hasTaskIdColumn ? TaskRoutingKind.Column
        : taskCount == 1 ? TaskRoutingKind.Fixed
        : TaskRoutingKind.Inferred;

    /// <summary>Whether rows of this kind of routing may get an inferred task: not with fixed routing, never when the
    /// model requires task ids.</summary>
    public static bool HasInference(TaskRoutingKind kind, bool requireTaskId) => kind != TaskRoutingKind.Fixed && !requireTaskId;

    /// <summary>Routing of <paramref name="model"/>'s rows for <paramref name="inputSchema"/>; checks the task id column.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The task id column is not text, or is needed and missing.</exception>
    public static TaskRouting Bind(ApdTransformer model, DataViewSchema inputSchema, string paramName)
    {
        var column = SchemaChecks.TaskIdColumn(inputSchema, model.TaskIdColumnName, paramName);
        var tasks = model.Tasks;
        var known = model.LabelSets.Keys.ToHashSet();
        var kind = KindOf(model.SelectedTask, column is not null, tasks.Count);
        if (kind == TaskRoutingKind.Inferred && model.RequireTaskId)
            throw new ArgumentOutOfRangeException(paramName,
                $"Could not find task id column '{model.TaskIdColumnName}': this model has {tasks.Count} tasks ({string.Join(", ", tasks)}) and requires task ids " +
                $"({nameof(ApdTrainer.Options.RequireTaskId)}), so each row needs its task's name in '{model.TaskIdColumnName}', or use {nameof(ApdTransformer)}.{nameof(ApdTransformer.ForTask)}(task) to predict one task.");
        string? fixedTask = kind == TaskRoutingKind.Fixed ? model.SelectedTask ?? tasks[0] : null;
        return new TaskRouting(kind, fixedTask, kind == TaskRoutingKind.Column ? column : null,
            HasInference(kind, model.RequireTaskId), known, tasks);
    }

    /// <summary>Input columns routing reads.</summary>
    public IEnumerable<DataViewSchema.Column> Dependencies =>
        TaskColumn is { } column ? new[] { column } : Array.Empty<DataViewSchema.Column>();

    /// <summary>Reads the task of the current row of <paramref name="row"/>.</summary>
    public Reader CreateReader(DataViewRow row) => new(this, row);

    /// <summary>The task of each row of one cursor or row.</summary>
    internal sealed class Reader
    {
        private readonly TaskRouting _routing;
        private readonly DataViewRow _row;
        private readonly ValueGetter<ReadOnlyMemory<char>>? _task;
        private ReadOnlyMemory<char> _text;
        private string? _last;

        public Reader(TaskRouting routing, DataViewRow row)
        {
            _routing = routing;
            _row = row;
            if (routing.TaskColumn is { } column) _task = row.GetGetter<ReadOnlyMemory<char>>(column);
        }

        /// <summary>The current row's task, or null when it is to be inferred.</summary>
        /// <exception cref="InvalidOperationException">The row names a task the model does not have, or has no task id
        /// and the model requires one.</exception>
        public string? Read()
        {
            if (_task is null) return _routing.FixedTask;
            _task(ref _text);
            if (_last is not null && _text.Span.SequenceEqual(_last)) return _last;
            if (_routing.CanInfer && _text.Span.IsWhiteSpace()) return null;
            string task = _text.ToString();
            if (!_routing._tasks.Contains(task))
                throw new InvalidOperationException(
                    $"Row {_row.Position}: task id '{task}' in column '{_routing.TaskColumn!.Value.Name}' is not a task of this model; {ApdTransformer.DescribeTasks(_routing._taskOrder)}.");
            return _last = task;
        }
    }
}
