namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// How many networks hold one immutable object (a task's head, its model of its inputs, its low-rank part, a frozen
/// task's slot), so that a copy of a network (<see cref="ApdNetwork.Clone"/>) can hold the same object instead of a new
/// handle on each of its tensors: with a thousand tasks that is thousands of native handles per <c>Fit</c>, against a
/// count per object here.
/// The object frees its tensors when the last holder disposes it; each holder disposes it exactly once.
/// </summary>
internal sealed class SharedOwners
{
    private int _count = 1;

    /// <summary>One more holder (the one <c>Share</c> returns the object to).</summary>
    public void Add() => Interlocked.Increment(ref _count);

    /// <summary>One holder fewer; true when it was the last, so the caller frees the tensors.</summary>
    public bool Release() => Interlocked.Decrement(ref _count) == 0;
}
