using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// A task's low-rank adaptive part of one layer, U_t V_tᵀ: U [out, r], V [fan-in, r] (fan-in = everything but the
/// output dimension). It adds a dense change of rank r to θ_t at r·(out + fan-in) parameters, which a sparse τ_t buys
/// only at many more stored elements: a task whose inputs relate to the earlier tasks' by a dense map (a pixel
/// permutation, another sensor layout) needs such a change of the first layer. Task-private and frozen once the task
/// is learned, so the retroactive update (which keeps σ ⊙ M_i + τ_i of earlier tasks) never touches it. Immutable.
/// </summary>
internal sealed class LowRankAdaptive : IDisposable
{
    public LowRankAdaptive(Tensor left, Tensor right)
    {
        if (left.dim() != 2 || right.dim() != 2 || left.shape[1] != right.shape[1])
            throw new ArgumentException($"Low-rank factors must be [out, r] and [fan-in, r]; got [{string.Join(", ", left.shape)}] and [{string.Join(", ", right.shape)}].");
        Left = left;
        Right = right;
    }

    /// <summary>U, [out, r].</summary>
    public Tensor Left { get; }
    /// <summary>V, [fan-in, r].</summary>
    public Tensor Right { get; }
    public long Rank => Left.shape[1];
    /// <summary>Stored parameters: r·(out + fan-in).</summary>
    public long ParameterCount => Left.numel() + Right.numel();

    /// <summary>U Vᵀ reshaped to the layer's weight shape (a new tensor in the caller's scope), as Σ_k u_k v_kᵀ summed
    /// in order with elementwise operations: the same bits for the same factors wherever they lie in memory. (A matrix
    /// product's blocking and vector paths depend on alignment, so a model and its saved-and-loaded copy could differ in
    /// the last bit.)</summary>
    public Tensor ToDense(long[] weightShape)
    {
        using var scope = NewDisposeScope();
        var sum = zeros([Left.shape[0], Right.shape[0]], dtype: Left.dtype, device: Left.device);
        using var one = 1.ToScalar(); // held for the calls (see TensorOwnership)
        for (long k = 0; k < Rank; k++)
            sum.add_(Left.narrow(1, k, 1) * Right.narrow(1, k, 1).t(), one);
        return sum.reshape(weightShape).MoveToOuterDisposeScope();
    }

    /// <summary>U Vᵀ as a tensor of <paramref name="weightShape"/> by a matrix product, differentiable: training's form
    /// (its last bits may differ from <see cref="ToDense"/>'s; the stored model uses ToDense only).</summary>
    public static Tensor Product(Tensor left, Tensor right, long[] weightShape) => left.mm(right.t()).reshape(weightShape);

    /// <summary>
    /// U Vᵀ of trained factors (caller's scope) reduced to its fewest leading singular components that keep at least
    /// <paramref name="keptEnergy"/> of ‖U Vᵀ‖_F² (1: the trained factors as they are; below 1, null when U Vᵀ = 0), as new factors
    /// U' = Q_U A √S, V' = Q_V B √S from U = Q_U R_U, V = Q_V R_V and R_U R_Vᵀ = A S Bᵀ (an r × r SVD): tasks that need
    /// a one- or two-dimensional change store that many components, not r.
    /// </summary>
    public static (Tensor Left, Tensor Right)? Truncated(Tensor left, Tensor right, double keptEnergy)
    {
        using var scope = NewDisposeScope();
        if (keptEnergy >= 1) return (left.detach().clone().MoveToOuterDisposeScope(), right.detach().clone().MoveToOuterDisposeScope());
        var (qLeft, rLeft) = linalg.qr(left.detach());
        var (qRight, rRight) = linalg.qr(right.detach());
        var (a, singular, bT) = linalg.svd(rLeft.mm(rRight.t()), fullMatrices: false);
        var energy = singular.square().cumsum(0).data<float>().ToArray();
        if (energy.Length == 0 || !(energy[^1] > 0)) return null;
        int kept = Array.FindIndex(energy, e => e >= keptEnergy * energy[^1]) + 1;
        if (kept == 0) kept = energy.Length; // rounding: the last partial sum fell short of keptEnergy × itself
        var scale = singular.narrow(0, 0, kept).sqrt();
        var newLeft = qLeft.mm(a.narrow(1, 0, kept)) * scale;
        var newRight = qRight.mm(bT.narrow(0, 0, kept).t()) * scale;
        return (newLeft.MoveToOuterDisposeScope(), newRight.MoveToOuterDisposeScope());
    }

    /// <summary>Fan-in of a weight shape [out, ...]: the row length of V.</summary>
    public static long FanIn(long[] weightShape) => weightShape.Skip(1).Aggregate(1L, (a, b) => a * b);

    private readonly SharedOwners _owners = new();

    /// <summary>The same factors for another owner: they are immutable, so both hold this object (see <see cref="SharedOwners"/>).</summary>
    public LowRankAdaptive Share()
    {
        _owners.Add();
        return this;
    }

    public void Dispose()
    {
        if (!_owners.Release()) return;
        Left.Dispose();
        Right.Dispose();
    }
}
