using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// A tensor stored as flat indices + values, so memory follows its non-zeros. Used for the adaptive parts τ_i of
/// tasks that are not being trained and for the locally-shared parts σ̃_g. Immutable once built.
/// </summary>
internal sealed class SparseAdaptive : IDisposable
{
    private SparseAdaptive(long[] shape, Tensor indices, Tensor values, long? nonZeros = null)
    {
        Shape = shape;
        Indices = indices;
        Values = values;
        NonZeros = nonZeros ?? indices.shape[0];
    }

    /// <summary>Dense shape of the tensor.</summary>
    public long[] Shape { get; }
    /// <summary>Flat (row-major) positions of the non-zeros, int64 [nnz], ascending.</summary>
    public Tensor Indices { get; }
    /// <summary>Values at <see cref="Indices"/>, float32 [nnz].</summary>
    public Tensor Values { get; }
    /// <summary>Entries stored (the tensors are immutable: read once, as reading a shape is a native call).</summary>
    public long NonZeros { get; }
    public long DenseSize => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Keeps the elements with |x| &gt; <paramref name="threshold"/> (hard threshold: |τ| ≤ λ₁ ⇒ 0).
    /// With threshold 0 exactly the non-zeros are kept. With <paramref name="halfPrecision"/> the kept values are rounded
    /// to the nearest 16-bit float (still held as float32), so storing them in half precision loses nothing; an
    /// element that rounds to 0 is dropped. The result lives outside any dispose scope.</summary>
    public static SparseAdaptive FromDense(Tensor dense, double threshold, bool halfPrecision = false)
    {
        using var scope = NewDisposeScope();
        var flat = dense.detach().reshape(-1);
        if (halfPrecision) flat = RoundToHalf(flat);
        // Scalars held for the call (see TensorOwnership).
        using var limit = threshold.ToScalar();
        using var zero = 0.ToScalar();
        var keep = threshold > 0 ? flat.abs().gt(limit) : flat.ne(zero);
        var indices = keep.nonzero().reshape(-1);
        var values = flat.index_select(0, indices).clone();
        return new SparseAdaptive(dense.shape.ToArray(), indices.DetachFromDisposeScope(), values.DetachFromDisposeScope());
    }

    /// <summary>x rounded to the nearest float16 (ties to even, as <see cref="Half"/>), as float32 (caller's scope).
    /// Values beyond float16's range stay as they are (the file then keeps that tensor in float32).</summary>
    public static Tensor RoundToHalf(Tensor x)
    {
        float largest = (float)Half.MaxValue;
        var rounded = x.to(ScalarType.Float16).to(ScalarType.Float32);
        // Usually every value is within range (two reductions tell, NaN included: it fails both comparisons) and the
        // elementwise choice below, three more passes over x, is not needed.
        if (x.numel() == 0 || (x.max().item<float>() <= largest && x.min().item<float>() >= -largest)) return rounded;
        using var limit = ((double)largest).ToScalar();
        return where(x.abs().le(limit), rounded, x);
    }

    /// <summary>Builds from explicit parts (takes ownership); validation is the caller's job.</summary>
    public static SparseAdaptive FromParts(long[] shape, Tensor indices, Tensor values) => new(shape, indices, values);

    /// <summary>The dense tensor (a new tensor, in the caller's dispose scope).</summary>
    public Tensor ToDense()
    {
        var dense = zeros(DenseSize, dtype: Values.dtype, device: Values.device);
        dense.index_copy_(0, Indices, Values);
        return dense.reshape(Shape);
    }

    /// <summary>The same tensor for another owner: new handles on the same immutable storage (nothing copied).</summary>
    public SparseAdaptive Share() => new(Shape, TensorOwnership.Share(Indices), TensorOwnership.Share(Values), NonZeros);

    public void Dispose()
    {
        Indices.Dispose();
        Values.Dispose();
    }
}
