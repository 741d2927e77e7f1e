# %% [markdown]
# # Module 05: DataLoader
#
# A model learns from data it sees in **mini-batches**: a few dozen to a few thousand examples
# at a time, in a new random order every epoch. The code that turns "a dataset on disk" into
# "a stream of shuffled, stacked batches" is the data pipeline. It is not glamorous, and it is
# the most common reason why an expensive accelerator sits idle.
#
# **What you build:**
#
# - `Dataset`: the interface every dataset follows: `len(ds)` and `ds[i]` (one example).
# - `TensorDataset(*tensors)`: a dataset over in-memory arrays, example `i` being row `i` of
#   each (features and labels).
# - `default_collate(samples)`: stack a list of examples into one batch of Tensors.
# - `DataLoader(dataset, batch_size, shuffle, drop_last, seed)`: iterates over batches, with a
#   seeded, reproducible new permutation every epoch.
#
# You then use them on a **real dataset** that ships with TinyTorch: 1,797 handwritten digits
# (8x8 pixels, 10 classes) from the UCI Machine Learning Repository, loaded with
# `tinytorch.datasets.load_digits()`.
#
# **Why it matters for systems:** a training step on a GPU can take milliseconds. If producing
# the next batch takes longer, the GPU waits, and you pay for hardware you do not use. Section 6
# measures where the time of *your* loader goes, and how memory scales from 1,797 tiny images to
# ImageNet-sized datasets that do not fit in RAM.
#
# **PyTorch equivalent:** `torch.utils.data.Dataset`, `TensorDataset`, `DataLoader`
# (`batch_size`, `shuffle`, `drop_last`, `generator`) and `default_collate`. PyTorch adds
# worker processes, pinned memory and prefetching on top of the same design.
#
# **How to work:** fill in every `raise NotImplementedError(...)`, run the check cell after
# each part, then run `pytest --module 05_dataloader` in a terminal to see your points.

# %% tags=["export"]
import numpy as np

from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## 1. Dataset and TensorDataset
#
# PyTorch's data API is built on one tiny interface, the *map-style dataset*: an object with
# `__len__` (how many examples) and `__getitem__(i)` (example number `i`). A dataset may read
# `i` from memory, decode a JPEG from disk, or fetch it over the network: the loader does not
# care. `Dataset` below is that interface (given).
#
# `TensorDataset(*tensors)` is the simplest dataset: tensors that share their first dimension,
# typically features `X` of shape `(n, ...)` and labels `y` of shape `(n,)`. Example `i` is the
# tuple `(X[i], y[i])`.
#
# - `__init__`: accept Tensors or NumPy arrays; wrap an array as a Tensor **keeping its dtype**
#   (`Tensor(a, dtype=a.dtype)`: labels must stay integers, not become float32). Raise
#   `ValueError` if no tensor is given, if one is 0-d, or if their first dimensions differ
#   (show all of them in the message). Keep them as a tuple in `self.tensors`.
# - `__len__`: the shared first dimension.
# - `__getitem__(index)`: the tuple of `t[index]` for every tensor (Tensor indexing keeps the
#   dtype, and an index out of range raises `IndexError`, as Python expects).

# %% tags=["export"]
class Dataset:
    """A map-style dataset: `torch.utils.data.Dataset`. Subclasses define __len__ and
    __getitem__(index), which returns one example (often a tuple like (features, label))."""

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")


class TensorDataset(Dataset):
    """Examples made of the rows of tensors that share their first dimension:
    `torch.utils.data.TensorDataset`. ds[i] == (t0[i], t1[i], ...)."""

    def __init__(self, *tensors):
        """tensors: Tensors or NumPy arrays (an array keeps its dtype), same first dimension;
        stored as a tuple of Tensors in self.tensors. ValueError otherwise."""
        ### BEGIN SOLUTION
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        converted = []
        for t in tensors:
            if not isinstance(t, Tensor):
                array = np.asarray(t)
                t = Tensor(array, dtype=array.dtype)
            if t.ndim == 0:
                raise ValueError("TensorDataset needs tensors with a first dimension, got a 0-d tensor")
            converted.append(t)
        lengths = [t.shape[0] for t in converted]
        if len(set(lengths)) != 1:
            raise ValueError(f"all tensors must have the same first dimension, got {lengths}")
        self.tensors = tuple(converted)
        ### END SOLUTION

    def __len__(self):
        """The number of examples: the shared first dimension."""
        ### BEGIN SOLUTION
        return self.tensors[0].shape[0]
        ### END SOLUTION

    def __getitem__(self, index):
        """Example `index`: a tuple with row `index` of every tensor."""
        ### BEGIN SOLUTION
        return tuple(t[index] for t in self.tensors)
        ### END SOLUTION

# %% [markdown]
# ### Check: TensorDataset

# %%
features = np.arange(12, dtype=np.float32).reshape(6, 2)
labels = np.array([0, 1, 0, 1, 2, 2])
ds = TensorDataset(Tensor(features), labels)
assert len(ds) == 6
x3, y3 = ds[3]
assert isinstance(x3, Tensor) and x3.data.tolist() == [6.0, 7.0] and x3.dtype == np.float32
assert int(y3.data) == 1 and y3.dtype == labels.dtype, "labels keep their integer dtype"
assert ds[-1][1].data == 2
try:
    TensorDataset(features, labels[:5])
    raise AssertionError("first dimensions 6 and 5 should raise ValueError")
except ValueError as err:
    print("length check ok:", err)
print("TensorDataset ok:", len(ds), "examples")

# %% [markdown]
# ## 2. Collating: from examples to a batch
#
# The loader fetches `batch_size` examples one by one and must turn them into a batch:
# `[(x0, y0), (x1, y1), ...]` becomes `(X_batch, y_batch)`, where `X_batch` stacks the `x`s
# along a **new first axis**. This step is called *collating*.
#
# `default_collate(samples)`:
# - if the examples are tuples (or lists), collate each position separately and return a
#   tuple: `(collate of all x, collate of all y)`;
# - otherwise the examples are Tensors, NumPy arrays or numbers: stack them with `np.stack`
#   (the `.data` of a Tensor) and return one Tensor with the stacked array's dtype
#   (`Tensor(stacked, dtype=stacked.dtype)`: int labels stay int64, float32 stays float32).
#
# Stacking **copies**: a batch is a fresh contiguous block of memory, `batch_size` times the
# size of one example. That copy is the price of a layout that matmul can use at full speed.

# %% tags=["export"]
def default_collate(samples):
    """Stack a list of examples into a batch: `torch.utils.data.default_collate`.

    Tuples/lists of fields -> a tuple with one batch per field; Tensors, arrays or numbers
    -> one Tensor of np.stack(...) along a new first axis, keeping the stacked dtype.
    """
    ### BEGIN SOLUTION
    first = samples[0]
    if isinstance(first, (tuple, list)):
        return tuple(default_collate([sample[field] for sample in samples]) for field in range(len(first)))
    stacked = np.stack([s.data if isinstance(s, Tensor) else np.asarray(s) for s in samples])
    return Tensor(stacked, dtype=stacked.dtype)
    ### END SOLUTION

# %% [markdown]
# ### Check: default_collate

# %%
xb, yb = default_collate([ds[0], ds[1], ds[2]])
assert xb.shape == (3, 2) and yb.shape == (3,) and yb.dtype == labels.dtype
assert xb.data.tolist() == features[:3].tolist()
assert default_collate([1, 2, 3]).data.tolist() == [1, 2, 3]
print("default_collate ok:", xb.shape, yb.shape)

# %% [markdown]
# ## 3. DataLoader: batches, shuffling, reproducibility
#
# `DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, collate_fn=None)`
# is an *iterable*: `for X, y in loader:` runs one **epoch**, one pass over the dataset.
#
# - **Batches.** Cut the list of indices into consecutive chunks of `batch_size`. The last
#   chunk may be smaller; with `drop_last=True` it is dropped, so every batch has the same
#   shape (which BatchNorm, compiled kernels and multi-GPU training appreciate).
# - **Shuffling.** With `shuffle=True`, every epoch visits the examples in a **new** random
#   order, a permutation of `range(n)` (each example exactly once per epoch). Without a
#   shuffle, a model sees the same sequence every epoch (and, for a dataset sorted by class,
#   a whole epoch of "0"s then of "1"s: gradient descent on that goes badly).
# - **Reproducibility.** The permutations are drawn from `self.rng`, a
#   `np.random.Generator` made from `seed` (an int seed, None, or a Generator used as it is).
#   Two loaders made with the same seed give the same sequence of epochs; each epoch draws a
#   new permutation because the generator's state advances. PyTorch's `generator=` argument
#   plays this role.
#
# Implement:
# - `__len__`: the number of batches per epoch: `ceil(n / batch_size)`, or
#   `floor(n / batch_size)` with `drop_last`.
# - `batch_indices()`: the list of index arrays of **one new epoch** (PyTorch's
#   `BatchSampler`): draw `self.rng.permutation(n)` when shuffling, else `np.arange(n)`, and cut it
#   into chunks. Call it once per epoch: each call draws a new permutation.
# - `__iter__`: a generator: for each index array of `self.batch_indices()`, fetch the
#   examples `self.dataset[int(i)]` and `yield self.collate_fn(examples)`.

# %% tags=["export"]
class DataLoader:
    """Batches of a dataset, optionally shuffled every epoch: `torch.utils.data.DataLoader`.

    DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, collate_fn=None)

    seed: None, an int or a np.random.Generator; the shuffling permutations are drawn from
    self.rng = np.random.default_rng(seed), so the same seed gives the same epochs.
    collate_fn: turns a list of examples into a batch (default_collate by default).
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, collate_fn=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        # default_rng returns a Generator unchanged, so a caller may share one with other code.
        self.rng = np.random.default_rng(seed)
        self.collate_fn = default_collate if collate_fn is None else collate_fn

    def __len__(self):
        """The number of batches in one epoch."""
        ### BEGIN SOLUTION
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return (n + self.batch_size - 1) // self.batch_size
        ### END SOLUTION

    def batch_indices(self):
        """The index arrays of the batches of one new epoch (a new permutation when shuffling)."""
        ### BEGIN SOLUTION
        n = len(self.dataset)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        batches = [order[start:start + self.batch_size] for start in range(0, n, self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches
        ### END SOLUTION

    def __iter__(self):
        """One epoch: yield collate_fn([dataset[i] for i in indices]) for each batch."""
        ### BEGIN SOLUTION
        for indices in self.batch_indices():
            yield self.collate_fn([self.dataset[int(i)] for i in indices])
        ### END SOLUTION

# %% [markdown]
# ### Check: batches, drop_last, shuffling, seeds

# %%
ten = TensorDataset(np.arange(10))
assert len(DataLoader(ten, batch_size=3)) == 4 and len(DataLoader(ten, batch_size=3, drop_last=True)) == 3
plain = [b[0].data.tolist() for b in DataLoader(ten, batch_size=3)]
assert plain == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]], plain
dropped = [b[0].data.tolist() for b in DataLoader(ten, batch_size=3, drop_last=True)]
assert dropped == [[0, 1, 2], [3, 4, 5], [6, 7, 8]], dropped

loader = DataLoader(ten, batch_size=4, shuffle=True, seed=0)
epoch1 = np.concatenate([b[0].data for b in loader])
epoch2 = np.concatenate([b[0].data for b in loader])
assert sorted(epoch1.tolist()) == list(range(10)), "every example exactly once per epoch"
assert epoch1.tolist() != epoch2.tolist(), "a new order every epoch"
again = DataLoader(ten, batch_size=4, shuffle=True, seed=0)
assert [b[0].data.tolist() for b in again] == [epoch1[:4].tolist(), epoch1[4:8].tolist(), epoch1[8:].tolist()]
print("DataLoader ok; epoch 1:", epoch1.tolist(), " epoch 2:", epoch2.tolist())

# %% [markdown]
# ## 4. A real dataset: handwritten digits
#
# `tinytorch.datasets.load_digits()` loads the bundled UCI digits with NumPy only (no
# download, no scikit-learn): `images` float32 in `[0, 1]` of shape `(1797, 64)` (one flattened
# 8x8 image per row; `flatten=False` gives `(1797, 8, 8)`) and `labels` int64 in `0..9`. The file
# stores the pixels as uint8 counts 0..16, 4x smaller than float32 (section 6 measures it).
# `train_test_split` makes a deterministic, seeded split. (Source and licence:
# `tinytorch/datasets/README.md`; the data is CC BY 4.0, by E. Alpaydin and C. Kaynak.)

# %%
from tinytorch.datasets import load_digits, train_test_split

images, digit_labels = load_digits()
X_train, X_test, y_train, y_test = train_test_split(images, digit_labels, test_size=0.2, seed=0)
print("train", X_train.shape, X_train.dtype, " test", X_test.shape, " classes", np.bincount(y_train))

train_loader = DataLoader(TensorDataset(X_train, y_train), batch_size=64, shuffle=True, seed=0)
xb, yb = next(iter(train_loader))
print("one batch:", xb.shape, xb.dtype, yb.shape, yb.dtype, "-", len(train_loader), "batches per epoch")
shades = " .:-=+*#%@"
for row in xb.data[0].reshape(8, 8):
    print("".join(shades[min(int(v * 10), 9)] * 2 for v in row))
print("label:", int(yb.data[0]))

# %% [markdown]
# ### A first "training" loop
#
# Before layers and gradients come together (modules 06-08), here is a model that needs only
# the loader: the **nearest class mean**. One pass over the training batches accumulates the
# sum of the images of each class; a test image is given the class whose mean image is
# closest. The loop below has the shape of every training loop: `for X, y in loader:` update
# some state from the batch.

# %%
sums, counts = np.zeros((10, 64)), np.zeros(10)
for xb, yb in train_loader:
    np.add.at(sums, yb.data, xb.data)           # per-class sums, batch by batch
    counts += np.bincount(yb.data, minlength=10)
means = sums / counts[:, None]
distances = ((X_test[:, None, :] - means[None, :, :]) ** 2).sum(axis=2)
accuracy = (distances.argmin(axis=1) == y_test).mean()
assert accuracy > 0.8, accuracy
print(f"nearest-class-mean accuracy on {len(y_test)} test digits: {accuracy:.1%}")

# %% [markdown]
# ## 5. (Reading) What PyTorch adds
#
# `torch.utils.data.DataLoader` has the same four ideas (dataset, sampler, collate, iterate)
# and adds, for throughput:
# - `num_workers=k`: k worker *processes* fetch and collate batches in parallel (processes, not
#   threads, because Python's GIL serialises Python code such as `__getitem__`);
# - `prefetch_factor`: each worker prepares batches ahead of time, so the next batch is ready
#   when the training step ends;
# - `pin_memory=True`: batches are copied into page-locked memory, from which the GPU can
#   copy asynchronously;
# - `DistributedSampler`: each of N GPUs sees a disjoint 1/N of every epoch (call
#   `set_epoch(e)` so the shuffle changes between epochs).

# %% [markdown]
# ## 6. Systems analysis: where the time and the memory of a data pipeline go
#
# Run the cell below. It measures, on your machine:
#
# 1. the time of one epoch over the digits for several batch sizes, in examples per second;
# 2. the same batches fetched by one vectorised NumPy indexing per batch (`X[indices]`)
#    instead of one `__getitem__` per example;
# 3. the memory of the dataset as uint8 (as stored), float32 (as loaded) and float64, and
#    what the measured bytes per pixel mean for an ImageNet-sized dataset.
#
# Read the numbers it prints before answering the questions at the end.

# %% tags=["analysis"]
import time


def _best_seconds(fn, repeats=3):
    """The fastest of a few runs of fn() (the least disturbed by other processes)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


dataset = TensorDataset(images, digit_labels)
n = len(dataset)
print(f"{'batch':>6} {'batches':>8} {'epoch ms':>9} {'examples/s':>11} {'vectorised ms':>14} {'speed-up':>9}")
for batch_size in (1, 8, 32, 128, 512):
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, seed=0)
    epoch_s = _best_seconds(lambda: [None for _ in loader])
    index_batches = loader.batch_indices()
    fast_s = _best_seconds(lambda: [(images[i], digit_labels[i]) for i in index_batches])
    print(f"{batch_size:>6} {len(loader):>8} {epoch_s * 1e3:>9.1f} {n / epoch_s:>11,.0f} "
          f"{fast_s * 1e3:>14.2f} {epoch_s / fast_s:>8.0f}x")

raw_images, _ = load_digits(raw=True)
print(f"\ndigits in memory: uint8 {raw_images.nbytes / 1e3:.0f} KB, float32 {images.nbytes / 1e3:.0f} KB, "
      f"float64 {images.astype(np.float64).nbytes / 1e3:.0f} KB")
imagenet_pixels = 1_281_167 * 224 * 224 * 3                      # ImageNet-1k train set, resized
for name, array in (("uint8", raw_images), ("float32", images)):
    per_pixel = array.nbytes / array.size                         # measured bytes per pixel
    print(f"ImageNet-1k at 224x224x3 in {name:<7}: {imagenet_pixels * per_pixel / 1e9:,.0f} GB")

# %% [markdown]
# ## 7. ML-systems questions
#
# Answer each question in the cell below it, in a few sentences. Refer to your code and to the
# numbers section 6 printed. These answers are graded by a TA (10 points each) with the course
# rubric: understanding, references to your implementation, and systems implications count.
#
# **Question 1 (throughput).**
# Section 6 timed an epoch of your `DataLoader` for several batch sizes and compared it with
# one vectorised indexing per batch. Where does the time of your loader go, and why does a
# bigger batch help less than you might expect? If a GPU training step took 2 ms per batch of
# 128 digits, would your loader keep up? What do PyTorch's `num_workers`, `prefetch_factor` and
# `pin_memory` do about it, and what do they cost?

# %% [markdown] tags=["answer"] question="q1"
# Almost all the time is Python overhead per *example*: `__iter__` calls
# `TensorDataset.__getitem__` once per index, which builds one small Tensor per field, and
# `default_collate` then copies them with `np.stack`. Bigger batches only amortise the
# per-batch part (one collate, one `np.stack` call): examples/s rise from batch 1 to about 32
# and then plateau (about 2x in section 6), because the per-example work stays. One vectorised
# `X[indices]` per batch is a single C loop and is tens to hundreds of times faster. At batch 128 the measured epoch time divided by the number of batches is about the
# cost of a batch; if it is above 2 ms the GPU would wait (it is data-bound). PyTorch runs
# `__getitem__` in `num_workers` processes (parallel, outside the GIL, but each worker costs
# memory, start-up time and inter-process copies), prefetches `prefetch_factor` batches per
# worker (more memory, hides latency) and pins memory (page-locked RAM, faster asynchronous
# host-to-GPU copies, but pinned memory is a scarce resource). Batched fetching (a sampler that
# yields index arrays, a dataset that accepts them) removes the per-example overhead entirely.

# %% [markdown]
# **Question 2 (shuffling and reproducibility).**
# Your loader draws a new permutation every epoch from a seeded generator. Why reshuffle every
# epoch, and why does the seed matter? A week-long training job crashes in the middle of epoch
# 7 and restarts from a checkpoint: what must the checkpoint contain so that it continues with
# exactly the batches it would have seen? How do 8 GPUs each get a different, reproducible
# share of every epoch, and how would you shuffle a dataset too big to permute (a stream of 10
# TB of text)?

# %% [markdown] tags=["answer"] question="q2"
# A fixed order makes the gradient noise correlated across epochs (and a sorted dataset gives
# batches of one class), which hurts convergence; a new permutation per epoch gives unbiased,
# independent mini-batch gradients. The seed makes a run repeatable: the same `seed` gives the
# same `self.rng.permutation(n)` sequence, so a bug or a result can be reproduced and two
# configurations compared on identical data order. To resume mid-epoch the checkpoint needs the
# model and optimizer state plus the data position: the generator's state
# (`rng.bit_generator.state`) *before* the epoch's permutation was drawn, the epoch number and
# how many batches were consumed, so the same permutation is drawn again and the first k batches
# are skipped. For 8 GPUs, every rank draws the same permutation from a seed derived from
# (seed, epoch) and takes every 8th index (PyTorch's `DistributedSampler` with `set_epoch`),
# padding or dropping so shards are equal. A stream too large to permute is shuffled
# approximately: shards are read in a random order and examples pass through a shuffle buffer of
# fixed size (WebDataset, tf.data), trading memory for randomness.

# %% [markdown]
# **Question 3 (memory and batch shapes).**
# Section 6 measured the memory of the digits as uint8, float32 and float64, and extrapolated
# to ImageNet. Which of these fits in the RAM of a typical training machine, and where should
# the uint8-to-float32 conversion happen? What does `drop_last=True` buy you, and what does it
# cost?

# %% [markdown] tags=["answer"] question="q3"
# The digits are tiny (about 115 KB as uint8, 4x that as float32, 8x as float64), but the same
# bytes per pixel put ImageNet-1k at about 190 GB in uint8 and about 770 GB in float32 (section
# 6): the float32 copy does not fit in the RAM of a typical node, even the uint8 copy hardly
# does. Store compact (uint8, compressed JPEG on disk, memory-mapped arrays), and convert
# per batch (in the loader's collate or on the GPU), so only `batch_size` examples ever exist in
# float32; `load_digits` converts everything up front only because 460 KB does not matter.
# `drop_last=True` makes every batch the same shape: no tiny last batch whose BatchNorm
# statistics are noisy, no recompilation of shape-specialised kernels, equal work per GPU. It
# costs up to `batch_size - 1` examples per epoch (with shuffling, different ones each epoch,
# so nothing is lost for good); `len(loader)` must then be `n // batch_size`, which learning-rate
# schedules depend on.
