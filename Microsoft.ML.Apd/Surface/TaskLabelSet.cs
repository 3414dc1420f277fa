namespace Microsoft.ML.Apd;

/// <summary>
/// The classes of one task: its distinct label values (canonical form, see <see cref="LabelColumnType"/>) sorted
/// ascending, so class index i of the task's head is <see cref="Values"/>[i].
/// </summary>
internal sealed class TaskLabelSet
{
    private readonly Dictionary<object, int> _index;

    public TaskLabelSet(LabelColumnType type, IEnumerable<object> values)
    {
        Type = type;
        var sorted = values.Distinct().ToList();
        sorted.Sort(type.Compare);
        Values = sorted;
        _index = new Dictionary<object, int>();
        for (int i = 0; i < sorted.Count; i++) _index[sorted[i]] = i;
        SlotNames = sorted.Select(v => type.Describe(v).AsMemory()).ToArray();
    }

    public LabelColumnType Type { get; }
    public IReadOnlyList<object> Values { get; }
    public int Count => Values.Count;
    /// <summary>Display names of the classes, used as the Score column's SlotNames and the label key's KeyValues.</summary>
    public ReadOnlyMemory<char>[] SlotNames { get; }

    /// <summary>Class index of a canonical value, or -1 when the value is missing or not one of the task's labels.</summary>
    public int IndexOf(object? value) => value is not null && _index.TryGetValue(value, out int i) ? i : -1;

    public void Write(BinaryWriter writer)
    {
        writer.Write(Values.Count);
        foreach (object value in Values) Type.WriteValue(writer, value);
    }

    /// <summary>Reads what <see cref="Write"/> wrote. The values must be strictly ascending, as written: a file whose
    /// labels decode differently (reordered or merged) would silently change which class an index means.</summary>
    public static TaskLabelSet Read(BinaryReader reader, LabelColumnType type)
    {
        int count = reader.ReadInt32();
        if (count < 0 || count > Engine.ApdLimits.MaxClasses) throw new InvalidDataException($"Invalid class count {count}.");
        Engine.ApdLimits.CheckRemaining(reader, count, $"a label set of {count:N0} classes"); // every value takes a byte or more
        var values = new object[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = type.ReadValue(reader);
            if (i > 0 && type.Compare(values[i - 1], values[i]) >= 0)
                throw new InvalidDataException("The label values of a task are not distinct and ascending.");
        }
        return new TaskLabelSet(type, values);
    }
}
