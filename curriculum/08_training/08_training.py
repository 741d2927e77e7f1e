# %% [markdown]
# # Module 08: Training
#
# You have every part of a deep-learning framework: tensors (01), layers (03), losses (04),
# batches (05), gradients (06) and update rules (07). This week you assemble them into the piece
# that every real project runs for hours or weeks: the **training loop**, and around it what makes
# a long run survivable: checkpoints that resume *exactly*, a learning-rate schedule, gradient
# clipping, gradient accumulation, seeded reproducibility and a progress display.
#
# | you build | what it does | PyTorch equivalent |
# |---|---|---|
# | `clip_grad_norm_(params, max_norm)` | rescales all gradients together when their norm is too large, returns the norm | `torch.nn.utils.clip_grad_norm_` |
# | `cosine_lr(step, base_lr, T_max, eta_min, warmup_steps)` | the learning rate at a step: linear warm-up, then half a cosine | `CosineAnnealingLR` (after `LinearLR` in a `SequentialLR`) |
# | `CosineAnnealingLR(optimizer, T_max, eta_min, warmup_steps)` | sets `optimizer.lr` at every `step()` | `torch.optim.lr_scheduler.CosineAnnealingLR` |
# | `Trainer.train_epoch`, `Trainer.evaluate` | one pass over the data (with accumulation and clipping), an evaluation under `no_grad()` | the loop you write in every PyTorch script; Lightning's `Trainer` |
# | `Trainer.save_checkpoint`, `Trainer.load_checkpoint` | model, optimizer, scheduler, epoch, RNG state: one `.npz`, written atomically | `torch.save({...})` / `torch.load` + `load_state_dict` |
# | `Trainer.fit` | epochs, validation, checkpoints, a progress line that does not flood | Lightning's `Trainer.fit`, Keras's `model.fit` |
#
# **The systems lesson.** A training run is a long-running *process*: it is interrupted
# (pre-empted cloud machines, out-of-memory crashes, a full disk), it is restarted, and it must
# then continue as if nothing happened. That requires saving *all* the state (not only the
# weights), writing it so that a crash never leaves a half-written file, and controlling every
# source of randomness. It is also the loop where a framework's overheads add up: everything
# outside the matrix products (Python, allocations, gathering a batch) is paid once per step,
# thousands of times per epoch. You will measure both: the time of an epoch against the batch
# size, and the size of a checkpoint against the number of parameters.
#
# **Prerequisites:** modules 01-07. Importing this module imports `tinytorch.core.autograd`, so
# `loss.backward()` works.
#
# **How to work:** fill in every `raise NotImplementedError(...)` in order, run the check cell
# after each part, then run `pytest --module 08_training` in a terminal to see your points.

# %% tags=["export"]
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.dataloader import DataLoader, TensorDataset, default_collate
from tinytorch.core.optimizers import _grad_array
from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## 1. The loop, and what it costs
#
# Every supervised training loop in PyTorch is the same five lines:
#
# ```python
# for x, y in loader:              # a batch (module 05)
#     optimizer.zero_grad()        # forget the last step's gradients (07)
#     loss = loss_fn(model(x), y)  # forward: layers (03) and a loss (04)
#     loss.backward()              # every p.grad (06)
#     optimizer.step()             # move every weight (07)
# ```
#
# One pass over the training data is an **epoch**; one `optimizer.step()` is a **step**
# (PyTorch's schedulers and most papers count steps, not epochs).
#
# **Where the time goes.** For the digits MLP of this module (64 -> 128 -> 10, batch 32, about
# 45 steps per epoch) the matrix products of one step cost a few microseconds each. Everything
# else is overhead paid per step: creating Tensors and graph nodes, Python calls, and gathering
# the batch. The DataLoader of module 05 builds a batch the general way, one `dataset[i]` call per
# example followed by an `np.stack`: for a dataset whose examples are just rows of arrays that is
# `batch_size` Python calls where one NumPy *fancy index* (`X[indices]`) does the same job.
#
# `iterate_batches(loader)` below (given) is the loop's batch source: for a `DataLoader` over a
# `TensorDataset` with the default collate function it takes that fast path, drawing the *same*
# index arrays from the loader (`loader.batch_indices()`, so the shuffling and its random
# generator are exactly the loader's), and falls back to iterating the loader for anything else.
# Section 7 measures what it saves.

# %% tags=["export"]
def iterate_batches(loader):
    """The batches of one epoch of `loader`, as tuples of Tensors.

    A DataLoader over a TensorDataset (exactly those classes) with the default collate
    function takes the fast path: one fancy-indexing gather per tensor and batch
    (t.data[indices]) instead of batch_size __getitem__ calls and an np.stack. The batches and
    the shuffling (the loader's own generator) are exactly the loader's. Anything else (a
    subclass, another dataset, a custom collate, a list of batches) is iterated as it is.
    """
    # Exact types only: a subclass may override __getitem__ or __iter__ (augmentation, say),
    # which the fast path would silently skip.
    if (type(loader) is DataLoader and type(loader.dataset) is TensorDataset
            and loader.collate_fn is default_collate):
        arrays = [t.data for t in loader.dataset.tensors]
        for indices in loader.batch_indices():
            yield tuple(Tensor(a[indices], dtype=a.dtype) for a in arrays)
    else:
        yield from loader

# %% [markdown]
# ## 2. Gradient clipping: `clip_grad_norm_`
#
# One bad batch (an outlier, a loss spike early in training, an RNN whose gradients explode
# through time) can produce a gradient a thousand times larger than usual, and a single step
# along it throws the weights far away from everything learned so far. **Clipping by the global
# norm** caps the length of the step's direction while keeping the direction:
#
# 1. the **total norm** is the norm of all gradients seen as one long vector. PyTorch computes
#    one norm per parameter and then the norm of those norms, which is the same number:
#    `total = (sum_p ||g_p||^q)^(1/q)` for `norm_type = q` (2 by default), and for
#    `norm_type = inf` the largest absolute value of any gradient entry;
# 2. `clip_coef = max_norm / (total + 1e-6)` (the `1e-6` avoids a division by zero);
# 3. if `clip_coef < 1`, **every** gradient is multiplied by it, **in place** (the same arrays:
#    the optimizer reads `p.grad` next). Otherwise nothing changes;
# 4. it returns `total`, the norm *before* clipping, as a Python `float`: logging it is the
#    best early warning of a diverging run.
#
# Parameters whose `.grad` is None are skipped (they take no part in the norm); with no
# gradient at all the norm is `0.0`. A single Tensor is accepted in place of a list, as in
# PyTorch. Use `_grad_array(p)` from module 07: it returns `p.grad` as an array (unwrapping a
# Tensor) or None. `np.linalg.norm(g.ravel(), q)` computes the norm of one gradient for any
# `q`, `inf` included.
#
# Why one global norm and not each parameter clipped on its own? Clipping parameters separately
# would change the *direction* of the update (some components shrunk, others not); the global
# version only shortens it.

# %% tags=["export"]
def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    """Rescale the gradients of `parameters` in place so that their total norm is at most
    `max_norm`; return the total norm before clipping (a float).

    PyTorch: torch.nn.utils.clip_grad_norm_. The total norm is the `norm_type`-norm of the
    per-parameter gradient norms (norm_type may be math.inf); when it exceeds max_norm every
    gradient is multiplied by max_norm / (total + 1e-6). Gradients that are None are skipped.
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    ### BEGIN SOLUTION
    grads = [g for g in (_grad_array(p) for p in parameters) if g is not None]
    if not grads:
        return 0.0
    norm_type = float(norm_type)
    norms = [np.linalg.norm(g.ravel(), norm_type) for g in grads]
    total = float(np.linalg.norm(np.asarray(norms, dtype=np.float64), norm_type))
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for g in grads:
            g *= scale              # in place: p.grad is this very array
    return total
    ### END SOLUTION

# %%
# Check clip_grad_norm_: the norm of [3, 4] and [12] is 13.
from tinytorch.core.layers import Linear, Parameter, Sequential

_a, _b, _c = Parameter(np.zeros(2)), Parameter(np.zeros(1)), Parameter(np.zeros(3))
_a.grad, _b.grad = np.array([3.0, 4.0], np.float32), np.array([12.0], np.float32)
_ga = _a.grad
assert abs(clip_grad_norm_([_a, _b, _c], max_norm=100.0) - 13.0) < 1e-5
assert _a.grad.tolist() == [3.0, 4.0], "below max_norm nothing changes"
assert abs(clip_grad_norm_([_a, _b, _c], max_norm=6.5) - 13.0) < 1e-5
assert np.allclose(_a.grad, [1.5, 2.0]) and np.allclose(_b.grad, [6.0]) and _a.grad is _ga, "halved, in place"
assert abs(clip_grad_norm_([_a, _b], max_norm=1.0, norm_type=math.inf) - 6.0) < 1e-5
assert clip_grad_norm_([_c], 1.0) == 0.0 and _c.grad is None
print("clip_grad_norm_ ok")

# %% [markdown]
# ## 3. A learning-rate schedule: cosine annealing with warm-up
#
# A constant learning rate is a compromise: large enough to make progress early, small enough
# not to bounce around the minimum late. Schedules remove the compromise. The one used to train
# most large models today is **cosine annealing**, PyTorch's `CosineAnnealingLR(optimizer,
# T_max, eta_min=0)`. At step `t` (counted from 0):
#
# ```text
# lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2
# ```
#
# It starts at `base_lr`, falls slowly at first, fastest in the middle and slowly again into
# `eta_min` at `t = T_max`. (Past `T_max` the formula rises again, as PyTorch's does: set `T_max`
# to the number of steps of the run.)
#
# **Warm-up.** At the very start the weights are random and Adam's second-moment estimates are
# based on a handful of gradients, so full-size steps are risky; large models "warm up" with a
# learning rate that grows linearly over the first `warmup_steps` steps. Ours:
#
# ```text
# t < warmup_steps:   lr(t) = base_lr * (t + 1) / (warmup_steps + 1)
# t >= warmup_steps:  the cosine above at step t - warmup_steps
# ```
#
# In PyTorch that is `SequentialLR(optimizer, [LinearLR(optimizer, start_factor=1 /
# (warmup_steps + 1), total_iters=warmup_steps), CosineAnnealingLR(optimizer, T_max, eta_min)],
# milestones=[warmup_steps])`: never a zero learning rate, `base_lr` reached at `t =
# warmup_steps`, then the cosine over the next `T_max` steps. With `warmup_steps = 0` it is
# exactly `CosineAnnealingLR`.
#
# **The scheduler object** follows PyTorch's protocol: it remembers `base_lr` (the optimizer's
# `lr` when the scheduler is made), sets `optimizer.lr` to the schedule's value for step 0 at
# construction, counts steps in `last_epoch` (PyTorch's name, although it counts steps), and
# every `scheduler.step()`, called once after each `optimizer.step()`, advances `last_epoch` by
# one and sets `optimizer.lr = cosine_lr(last_epoch, ...)`. Our optimizers keep the learning
# rate in the attribute `optimizer.lr` (module 07), so that is all it takes.
#
# **Your tasks:** `cosine_lr` (a pure function: easy to test and to plot) and
# `CosineAnnealingLR.step`.

# %% tags=["export"]
def cosine_lr(step, base_lr, T_max, eta_min=0.0, warmup_steps=0):
    """The learning rate at `step` (0, 1, 2, ...): a linear warm-up over `warmup_steps` steps,
    base_lr * (step + 1) / (warmup_steps + 1), then PyTorch's CosineAnnealingLR,
    eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2 with t = step - warmup_steps."""
    ### BEGIN SOLUTION
    if step < warmup_steps:
        return base_lr * (step + 1) / (warmup_steps + 1)
    progress = (step - warmup_steps) / T_max          # 0 -> 1 over the cosine's T_max steps
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * progress)) / 2
    ### END SOLUTION


class CosineAnnealingLR:
    """Cosine learning-rate schedule with optional linear warm-up, stepped once per optimizer
    step. PyTorch: torch.optim.lr_scheduler.CosineAnnealingLR (warmup_steps=0), preceded by
    LinearLR in a SequentialLR when warmup_steps > 0.

    CosineAnnealingLR(optimizer, T_max, eta_min=0.0, warmup_steps=0). base_lr is the
    optimizer's lr at construction; the optimizer's lr is set to the step-0 value at once.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, warmup_steps=0):
        if int(T_max) < 1:
            raise ValueError(f"T_max must be a positive number of steps, got {T_max}")
        if int(warmup_steps) < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.T_max, self.eta_min, self.warmup_steps = int(T_max), float(eta_min), int(warmup_steps)
        self.last_epoch = 0          # PyTorch's name; it counts scheduler steps
        optimizer.lr = self.lr_at(0)

    def lr_at(self, step):
        """The schedule's learning rate at `step`."""
        return cosine_lr(step, self.base_lr, self.T_max, self.eta_min, self.warmup_steps)

    def step(self):
        """Advance one step: last_epoch += 1, then set the optimizer's lr to its new value."""
        ### BEGIN SOLUTION
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)
        ### END SOLUTION

    def get_last_lr(self):
        """The current learning rate, in a list (one per parameter group, as in PyTorch)."""
        return [self.optimizer.lr]

    def state_dict(self):
        """What a checkpoint needs to resume the schedule (plain numbers)."""
        return {"base_lr": self.base_lr, "T_max": self.T_max, "eta_min": self.eta_min,
                "warmup_steps": self.warmup_steps, "last_epoch": self.last_epoch}

    def load_state_dict(self, state):
        """Restore a state_dict() and the optimizer's lr at that step."""
        self.base_lr, self.last_epoch = float(state["base_lr"]), int(state["last_epoch"])
        self.T_max, self.eta_min = int(state["T_max"]), float(state["eta_min"])
        self.warmup_steps = int(state["warmup_steps"])
        self.optimizer.lr = self.lr_at(self.last_epoch)

# %%
# Check the schedule: base_lr at the start, eta_min at T_max, the midpoint halfway.
assert cosine_lr(0, 1.0, 10) == 1.0 and abs(cosine_lr(10, 1.0, 10, eta_min=0.1) - 0.1) < 1e-12
assert abs(cosine_lr(5, 1.0, 10) - 0.5) < 1e-12
assert [round(cosine_lr(t, 1.0, 4, warmup_steps=3), 4) for t in range(4)] == [0.25, 0.5, 0.75, 1.0]

from tinytorch.core.optimizers import SGD, Adam, AdamW

_opt = SGD([Parameter(np.zeros(1))], lr=0.5)
_sched = CosineAnnealingLR(_opt, T_max=4, warmup_steps=1)
_lrs = [_opt.lr]
for _ in range(5):
    _sched.step()
    _lrs.append(_opt.lr)
print("lr per step:", [round(v, 4) for v in _lrs])
assert np.allclose(_lrs, [0.25, 0.5, 0.5 * (1 + math.cos(math.pi / 4)) / 2, 0.25, 0.5 * (1 + math.cos(3 * math.pi / 4)) / 2, 0.0])
print("schedule ok")

# %% [markdown]
# ## 4. The `Trainer`: one epoch, and an evaluation
#
# The `Trainer` holds what a run needs: the `model`, the `optimizer`, the `loss_fn`, and
# optionally a `scheduler`, a `max_grad_norm` for clipping and `accumulation_steps`. It counts
# finished epochs in `self.epoch` and optimizer steps in `self.global_step`, and owns the run's
# random generator `self.rng` (section 6).
#
# ### Gradient accumulation
#
# The batch size you want (for stable gradients, or to reproduce a paper) often does not fit in
# memory: activation memory grows with the batch (module 06). Gradients add up across `backward`
# calls until `zero_grad()` (module 06 again), so a batch of `k * b` examples can be processed
# as `k` **micro-batches** of `b`: backward each micro-batch loss **divided by k**, and take one
# optimizer step after the k-th. The mean of k batch means is the mean over all `k * b` examples,
# so the step is the same as for the big batch (up to float rounding), with the activation
# memory of one micro-batch. The price: `k` times fewer optimizer steps per epoch, and the
# small batches run less efficiently (section 7).
#
# When the number of batches of an epoch is not a multiple of `k`, the last group has fewer
# micro-batches, `r`: divide its losses by `r`, not `k`, so that its step is not shrunk. The
# group of batch `i` (counted from 0) starts at `i - i % k` and holds
# `min(k, len(loader) - start)` batches.
#
# ### `train_epoch(loader)`
#
# 1. put the model in training mode (`train()`: dropout on, module 03) and clear the gradients
#    with the optimizer's `zero_grad()`;
# 2. for each batch `(x, y)` of `iterate_batches(loader)`:
#    - the batch's loss, `self.loss_fn` of the model's output and `y`; then `backward()` on
#      `loss * (1 / group size)` (or on `loss` itself when the group has one batch: one graph
#      node less);
#    - accumulate `float(loss.data) * len(y)`, the batch's *summed* loss (the last batch of an
#      epoch may be smaller: weighting by its size gives the true mean over the examples);
#    - after the last micro-batch of a group: clip the optimizer's parameters' gradients to
#      `max_grad_norm` (only when it is not None), step the optimizer, clear the gradients, count
#      the step in `global_step`, and step the scheduler when there is one (schedules count
#      optimizer steps);
# 3. count the epoch in `epoch`, and return the mean loss over the examples as a Python `float`.
#
# ### `evaluate(loader)`
#
# Evaluation must not change the model: run it in `model.eval()` mode (dropout off) and inside
# `no_grad()` (no graph, no saved activations: module 06 measured what that saves), then put the
# model back in the mode it was in (read `self.model.training` first). Return a dict
# `{"loss": mean loss over the examples, "accuracy": fraction of correct predictions}`, where a
# prediction is the `argmax` of a row of logits; when the outputs are not class scores (the
# output is not 2-D or the targets not 1-D), `"accuracy"` is None.

# %% tags=["export"]
class Trainer:
    """Runs training: epochs, evaluation, checkpoints, progress. Like Lightning's Trainer.

    Trainer(model, optimizer, loss_fn, scheduler=None, max_grad_norm=None,
            accumulation_steps=1, rng=None)

    model: a Module; optimizer: an Optimizer over its parameters; loss_fn: loss_fn(output, y)
    -> a 0-d Tensor. scheduler: stepped after every optimizer step. max_grad_norm: clip the
    global gradient norm before each step. accumulation_steps: micro-batches per optimizer
    step. rng: the run's random generator (an int seed, a Generator or None); share it with
    the DataLoader (DataLoader(..., seed=trainer.rng)) and with Dropout layers, and a
    checkpoint then captures all of the run's randomness.
    """

    def __init__(self, model, optimizer, loss_fn, scheduler=None, max_grad_norm=None,
                 accumulation_steps=1, rng=None):
        if int(accumulation_steps) < 1:
            raise ValueError(f"accumulation_steps must be >= 1, got {accumulation_steps}")
        if max_grad_norm is not None and max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be positive, got {max_grad_norm}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler = scheduler
        self.max_grad_norm = max_grad_norm
        self.accumulation_steps = int(accumulation_steps)
        self.rng = np.random.default_rng(rng)   # a Generator passed in is shared, not copied
        self.epoch = 0           # finished epochs
        self.global_step = 0     # optimizer steps taken
        self.history = {"train_loss": [], "val_loss": [], "val_accuracy": [], "lr": []}

    def train_epoch(self, loader):
        """One pass over `loader`: forward, backward (losses divided by the size of their
        accumulation group), clipping, optimizer and scheduler steps. Returns the mean training
        loss over the examples (a float) and adds one to self.epoch."""
        ### BEGIN SOLUTION
        self.model.train()
        self.optimizer.zero_grad()
        k, n_batches = self.accumulation_steps, len(loader)
        total, count = 0.0, 0
        for index, (x, y) in enumerate(iterate_batches(loader)):
            start = index - index % k
            group = min(k, n_batches - start)        # micro-batches in this optimizer step
            loss = self.loss_fn(self.model(x), y)
            (loss if group == 1 else loss * (1.0 / group)).backward()
            total += float(loss.data) * len(y)
            count += len(y)
            if index - start == group - 1:           # the group's last micro-batch: step
                if self.max_grad_norm is not None:
                    clip_grad_norm_(self.optimizer.params, self.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad()
                self.global_step += 1
                if self.scheduler is not None:
                    self.scheduler.step()
        self.epoch += 1
        return total / count
        ### END SOLUTION

    def evaluate(self, loader):
        """Mean loss and accuracy over `loader`, in eval mode and without a graph; the model's
        mode is restored. Returns {"loss": float, "accuracy": float or None}."""
        ### BEGIN SOLUTION
        was_training = self.model.training
        self.model.eval()
        total, correct, count, classify = 0.0, 0, 0, True
        with no_grad():
            for x, y in iterate_batches(loader):
                out = self.model(x)
                total += float(self.loss_fn(out, y).data) * len(y)
                count += len(y)
                classify = classify and out.ndim == 2 and y.ndim == 1
                if classify:
                    correct += int((out.data.argmax(axis=1) == y.data).sum())
        self.model.train(was_training)
        return {"loss": total / count, "accuracy": correct / count if classify else None}
        ### END SOLUTION

    # --- checkpoints (section 5) ------------------------------------------------------------
    def save_checkpoint(self, path):
        """Write model, optimizer, scheduler, epoch, step, history and RNG state to one .npz
        file at `path`, atomically (atomic_savez). Returns the path."""
        ### BEGIN SOLUTION
        payload = {f"model/{name}": value for name, value in self.model.state_dict().items()}
        optimizer = self.optimizer.state_dict()
        scalars = {}
        for index, entry in optimizer["state"].items():
            for name, value in entry.items():
                if isinstance(value, np.ndarray):
                    payload[f"optimizer/{index}/{name}"] = value
                else:
                    scalars.setdefault(str(index), {})[name] = value
        meta = {"format": CHECKPOINT_FORMAT, "epoch": self.epoch, "global_step": self.global_step,
                "history": self.history, "param_groups": optimizer["param_groups"],
                "optimizer_scalars": scalars, "rng": self.rng.bit_generator.state,
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict()}
        payload["meta"] = np.array(json.dumps(meta))       # encoded first: a bad value writes nothing
        atomic_savez(path, payload)
        return path
        ### END SOLUTION

    def load_checkpoint(self, path):
        """Restore everything save_checkpoint wrote, so that training continues exactly as if
        it had never stopped. Returns the checkpoint's metadata dict."""
        ### BEGIN SOLUTION
        with np.load(path, allow_pickle=False) as data:     # no pickle: a checkpoint cannot run code
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"{path}: checkpoint format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT}")
            model_state = {key[len("model/"):]: data[key] for key in data.files if key.startswith("model/")}
            state = {int(index): dict(entry) for index, entry in meta["optimizer_scalars"].items()}
            for key in data.files:
                if key.startswith("optimizer/"):
                    _, index, name = key.split("/", 2)
                    state.setdefault(int(index), {})[name] = data[key]
        # JSON has no tuples: give back Adam's betas as the tuple it was.
        groups = [{name: tuple(value) if isinstance(value, list) and name != "params" else value
                   for name, value in group.items()} for group in meta["param_groups"]]
        previous = self.model.state_dict()
        self.model.load_state_dict(model_state)
        try:
            self.optimizer.load_state_dict({"state": state, "param_groups": groups})
        except Exception:
            self.model.load_state_dict(previous)          # never leave the run half-loaded
            raise
        if self.scheduler is not None and meta["scheduler"] is not None:
            self.scheduler.load_state_dict(meta["scheduler"])
        self.rng.bit_generator.state = meta["rng"]          # in place: a loader sharing it follows
        self.epoch, self.global_step, self.history = meta["epoch"], meta["global_step"], meta["history"]
        return meta
        ### END SOLUTION

    # --- the whole run (section 6) ----------------------------------------------------------
    def fit(self, train_loader, epochs, val_loader=None, checkpoint_path=None, verbose=True, file=None):
        """Train for `epochs` more epochs: train_epoch, then evaluate on val_loader (if any),
        record self.history, save a checkpoint (if checkpoint_path) and report progress: one
        plain-text line per reported epoch, at most about 20 lines however long the run.
        Returns self.history."""
        ### BEGIN SOLUTION
        out = sys.stdout if file is None else file
        last = self.epoch + epochs
        every = max(1, math.ceil(epochs / 20))    # long runs: report every few epochs, ~20 lines
        for done in range(1, epochs + 1):
            start = time.perf_counter()
            lr = self.optimizer.lr
            train_loss = self.train_epoch(train_loader)
            self.history["train_loss"].append(train_loss)
            self.history["lr"].append(lr)
            line = f"epoch {self.epoch}/{last}  train_loss {train_loss:.4f}"
            if val_loader is not None:
                metrics = self.evaluate(val_loader)
                self.history["val_loss"].append(metrics["loss"])
                self.history["val_accuracy"].append(metrics["accuracy"])
                line += f"  val_loss {metrics['loss']:.4f}"
                if metrics["accuracy"] is not None:
                    line += f"  val_acc {metrics['accuracy']:.2%}"
            if checkpoint_path is not None:
                self.save_checkpoint(checkpoint_path)
            if verbose and (done == 1 or done == epochs or done % every == 0):
                print(f"{line}  lr {lr:.3g}  {time.perf_counter() - start:.2f}s", file=out, flush=True)
        return self.history
        ### END SOLUTION

# %% [markdown]
# ### Check: an epoch, accumulation, evaluation
#
# A linear model on a small regression problem. Two things to see: the loss goes down, and four
# micro-batches of 8 with `accumulation_steps=4` give the same weights as one batch of 32.

# %%
from tinytorch.core.losses import CrossEntropyLoss, MSELoss
from tinytorch.datasets import make_blobs, make_regression

_X, _y, _, _ = make_regression(n_samples=64, n_features=3, seed=0)
_Y = _y.reshape(-1, 1)


def _linear_run(batch_size, accumulation_steps, epochs=3):
    model = Linear(3, 1, rng=0)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss(), accumulation_steps=accumulation_steps)
    loader = DataLoader(TensorDataset(_X, _Y), batch_size=batch_size)
    losses = [trainer.train_epoch(loader) for _ in range(epochs)]
    return losses, model.weight.data.copy(), trainer


_losses, _w32, _t32 = _linear_run(32, 1)
_, _w8x4, _t8x4 = _linear_run(8, 4)
print("train loss per epoch:", [round(v, 4) for v in _losses])
assert _losses[-1] < _losses[0] and _t32.epoch == 3 and _t32.global_step == 6
assert _t8x4.global_step == 6 and np.allclose(_w32, _w8x4, rtol=1e-5, atol=1e-6), "accumulation = a big batch"
_m = _t32.evaluate(DataLoader(TensorDataset(_X, _Y), batch_size=64))
assert _m["accuracy"] is None and abs(_m["loss"] - float(np.mean((_X @ _w32.T + _t32.model.bias.data - _Y) ** 2))) < 1e-4
assert all(p.grad is None for p in _t32.model.parameters()), "evaluate builds no graph, leaves no gradient"
print("train_epoch and evaluate ok")

# %% [markdown]
# ## 5. Checkpoints that resume exactly, written atomically
#
# A checkpoint must hold **everything** the next step depends on, or the resumed run is a
# different run:
#
# | state | why | lost when you save only the weights |
# |---|---|---|
# | model parameters | the weights | - |
# | optimizer state | Adam's moments and step count, SGD's velocity (module 07) | Adam restarts its bias correction: a spike of full-size steps |
# | scheduler state | where in the schedule we are | the learning rate jumps back to warm-up |
# | epoch, global step, history | logging, when to stop | the run trains too long |
# | RNG state | the shuffling of the coming epochs, dropout masks | different batches from there on |
#
# **One file, NumPy only.** `np.savez(file, **arrays)` writes a `.npz`: a zip archive with one
# `.npy` per named array. The arrays go in under names with a prefix (`model/0.weight`,
# `optimizer/3/exp_avg`), and everything that is not an array (epoch, step, history, the
# optimizer's hyperparameters and counters, the scheduler, the RNG state) goes into **one JSON
# string** stored as a 0-d array under `meta` (`np.array(json.dumps(meta))`), in the
# format-version-checked layout below. Loading uses `np.load(path, allow_pickle=False)`: a
# checkpoint is data and must never be able to run code (PyTorch's `torch.load` unpickles, which
# is why it now defaults to `weights_only=True`).
#
# ```text
# model/<name>            the model's state_dict() arrays
# optimizer/<i>/<name>    the array entries of optimizer.state_dict()["state"][i]
# meta                    JSON: {"format", "epoch", "global_step", "history", "param_groups",
#                                "optimizer_scalars": {"<i>": {name: number}}, "rng", "scheduler"}
# ```
#
# The RNG state is `self.rng.bit_generator.state`, a dict of integers (JSON-friendly); loading
# assigns it back to the *same* Generator object, so a DataLoader built with
# `seed=trainer.rng` (which shares the Generator, module 05) shuffles the coming epochs exactly as
# the uninterrupted run would have.
#
# **Atomic writes.** A run killed in the middle of `np.savez` (a pre-emption, an out-of-memory
# kill, a full disk) must not destroy the *previous* checkpoint, the only way back. So never write
# to `path` directly: write a temporary file **in the same folder**, flush it to disk
# (`os.fsync`), then `os.replace(tmp, path)`, which renames atomically (the folder shows the old
# file or the new one, never half of one; across file systems a rename is not atomic, hence the
# same folder). If anything fails, delete the temporary file and re-raise. `atomic_savez` below is
# given; use it.
#
# **Your tasks:** `Trainer.save_checkpoint` and `Trainer.load_checkpoint`, above. Details:
#
# - `save_checkpoint`: build the dict of arrays and the `meta` dict (format `CHECKPOINT_FORMAT`),
#   encode `meta` with `json.dumps` *before* writing anything (a value JSON cannot encode then
#   fails without touching the old file), and write the arrays with `atomic_savez`; return `path`.
# - `load_checkpoint`: read with `allow_pickle=False` and rebuild the optimizer's state dict
#   (`{"state": {index: {name: value}}, "param_groups": [...]}`; JSON turned Adam's `betas`
#   tuple into a list: make it a tuple again), then load the model, the optimizer, the scheduler
#   (if both the trainer and the checkpoint have one), the RNG state, `epoch`, `global_step` and
#   `history`; return the meta dict. Both `load_state_dict`s validate before they write; if the
#   optimizer's rejects the checkpoint after the model's was loaded, put the model's previous
#   state back before re-raising: a failed load must leave the run as it was.

# %% tags=["export"]
CHECKPOINT_FORMAT = 1


def atomic_savez(path, arrays):
    """np.savez(path, **arrays), atomically: write a temporary file in the same folder, fsync
    it, then os.replace it over `path`. On any error the temporary file is removed and `path`
    keeps its previous content."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())        # the bytes are on disk before the name points at them
        os.replace(tmp, path)                # atomic within one file system
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

# %%
# Check: save after 2 epochs, train 2 more; a fresh trainer that loads the checkpoint trains the
# same 2 epochs to the same losses, bit for bit (shuffling, Adam's moments and the schedule included).
_Xb, _yb = make_blobs(n_samples=120, centers=3, n_features=4, seed=1)
_folder = tempfile.mkdtemp()     # a private folder under the system's temporary directory
_path = os.path.join(_folder, "run.npz")


def _blob_trainer(init_seed):
    model = Sequential(Linear(4, 16, rng=init_seed), Linear(16, 3, rng=init_seed + 1))
    optimizer = Adam(model.parameters(), lr=0.01)
    trainer = Trainer(model, optimizer, CrossEntropyLoss(), scheduler=CosineAnnealingLR(optimizer, T_max=40),
                      max_grad_norm=1.0, rng=7)
    return trainer, DataLoader(TensorDataset(_Xb, _yb), batch_size=16, shuffle=True, seed=trainer.rng)


_t1, _l1 = _blob_trainer(0)
for _ in range(2):
    _t1.train_epoch(_l1)
_t1.save_checkpoint(_path)
_expected = [_t1.train_epoch(_l1) for _ in range(2)]
_t2, _l2 = _blob_trainer(100)                          # different weights, fresh optimizer
_meta = _t2.load_checkpoint(_path)
_resumed = [_t2.train_epoch(_l2) for _ in range(2)]
print("uninterrupted:", _expected, "\nresumed:      ", _resumed)
assert _resumed == _expected and _t2.epoch == 4 and _t2.global_step == _t1.global_step
assert _t2.optimizer.lr == _t1.optimizer.lr and isinstance(_t2.optimizer.betas, tuple)
assert sorted(os.listdir(_folder)) == ["run.npz"], "no temporary file left behind"
with np.load(_path, allow_pickle=False) as _data:
    print(f"checkpoint ok: {os.path.getsize(_path):,} bytes, keys {sorted(_data.files)[:3]} ...")
import shutil

shutil.rmtree(_folder)

# %% [markdown]
# ## 6. Reproducibility and a progress display: `fit`
#
# **Same seed, same run.** A run is reproducible when every random choice comes from a seeded
# generator: the initial weights (`Linear(..., rng=g)`), the shuffling
# (`DataLoader(..., seed=g)`) and dropout. TinyTorch never uses NumPy's hidden global generator,
# so with explicit seeds two runs give *identical* losses, bit for bit, on the same machine and
# library versions. (Across machines, BLAS libraries may sum in a different order and the last
# bits differ; on GPUs some kernels, like atomic-add reductions, are nondeterministic unless you
# ask for deterministic algorithms, `torch.use_deterministic_algorithms(True)`, at a speed cost.)
#
# **A progress display that does not flood.** A run of 500 epochs printing a line per epoch
# writes 500 lines into a notebook cell, which then takes seconds to render and hides the
# interesting part. `fit` prints plain text, one line per *reported* epoch: the first, the last,
# and every `ceil(epochs / 20)`-th, so at most about 20 lines however long the run, each with the
# epoch (`epoch 7/20`, counting from the run's first epoch, so a resumed run continues the
# count), the training loss, the validation loss and accuracy (when there is a `val_loader`), the
# learning rate used in that epoch and its wall time. No carriage returns or terminal escape
# codes: they do not work the same in a notebook, a terminal and a log file.
#
# **Your task:** `Trainer.fit`. For each of the `epochs` epochs: remember the learning rate at the
# start, `train_epoch`, append the training loss and that learning rate to `self.history`, then
# (with a `val_loader`) `evaluate` and append `val_loss` and `val_accuracy`, then save a checkpoint
# when `checkpoint_path` is given (every epoch: a crash loses at most one), then print the line if
# `verbose` and the epoch is reported. Print to `file` (a stream; `sys.stdout` when None) with
# `flush=True` so the line appears while the run continues. Return `self.history`.

# %%
# Check: the same seed gives the same losses; a 45-epoch run prints at most about 20 lines.
import io


def _seeded_run(seed, epochs=3, file=None):
    g = np.random.default_rng(seed)
    model = Sequential(Linear(4, 16, rng=g), Linear(16, 3, rng=g))
    trainer = Trainer(model, SGD(model.parameters(), lr=0.01, momentum=0.9), CrossEntropyLoss(), rng=g)
    loader = DataLoader(TensorDataset(_Xb, _yb), batch_size=16, shuffle=True, seed=trainer.rng)
    return trainer.fit(loader, epochs, val_loader=DataLoader(TensorDataset(_Xb, _yb), batch_size=60), file=file)


_quiet = io.StringIO()
assert _seeded_run(3, file=_quiet)["train_loss"] == _seeded_run(3, file=_quiet)["train_loss"] \
    != _seeded_run(4, file=_quiet)["train_loss"], "same seed, same losses; another seed, other losses"
_out = io.StringIO()
_hist = _seeded_run(3, epochs=45, file=_out)
print(_out.getvalue())
assert len(_hist["train_loss"]) == 45 == len(_hist["val_accuracy"]) and len(_out.getvalue().splitlines()) <= 21
print("fit ok")

# %% [markdown]
# ## 7. Systems analysis: time per epoch, and the size of a checkpoint
#
# Two measurements on the real digits data (1,797 8x8 images, module 05's loader):
#
# 1. **Time per epoch against the batch size**, for the MLP 64 -> 128 -> 10 with Adam, split
#    into the batch gathering (the per-example `DataLoader` path against `iterate_batches`'s fast
#    path) and the training step, with the examples per second and the accuracy after a few
#    epochs. Small batches mean many steps, so the per-step overhead dominates; large batches
#    mean fewer, more efficient matrix products but fewer updates per epoch.
# 2. **Checkpoint bytes against the parameter count**, for SGD, SGD with momentum and Adam:
#    the parameters, plus one (momentum) or two (Adam) copies of them, plus a little metadata.

# %% tags=["analysis"]
import shutil

from tinytorch.core.activations import ReLU
from tinytorch.datasets import load_digits, train_test_split

_images, _labels = load_digits()
_Xtr, _Xte, _ytr, _yte = train_test_split(_images, _labels, test_size=0.2, seed=0)


def _median_time(fn, repeat=5):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


# Timings on a shared machine are noisy: run on a quiet one, with one BLAS thread
# (`OPENBLAS_NUM_THREADS=1 jupyter lab`), and each figure is the median of 5 runs.
print("BLAS threads:", os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default (all cores)")
print("1. one epoch of the digits MLP (64 -> 128 -> 10, Adam), 1,437 training images")
print(f"{'batch':>6} {'steps':>6} {'loader ms':>10} {'fast ms':>8} {'epoch ms':>9} {'ex/s':>8} {'acc (5 ep)':>10}")
for _bs in (8, 16, 32, 64, 128, 256):
    _g = np.random.default_rng(0)
    _model = Sequential(Linear(64, 128, rng=_g), ReLU(), Linear(128, 10, rng=_g))
    _trainer = Trainer(_model, Adam(_model.parameters(), lr=2e-3), CrossEntropyLoss(), rng=0)
    _train = DataLoader(TensorDataset(_Xtr, _ytr), batch_size=_bs, shuffle=True, seed=_trainer.rng)
    _t_loader = _median_time(lambda: [b for b in _train])
    _t_fast = _median_time(lambda: [b for b in iterate_batches(_train)])
    _t_epoch = _median_time(lambda: _trainer.train_epoch(_train))
    _acc = _trainer.evaluate(DataLoader(TensorDataset(_Xte, _yte), batch_size=512))["accuracy"]
    print(f"{_bs:>6} {len(_train):>6} {_t_loader * 1e3:>10.1f} {_t_fast * 1e3:>8.1f} {_t_epoch * 1e3:>9.1f} "
          f"{len(_Xtr) / _t_epoch:>8,.0f} {_acc:>10.1%}")

print("\n2. checkpoint size against parameters (MLP 64 -> h -> 10)")
print(f"{'hidden':>7} {'params':>9} {'param KiB':>10} {'SGD KiB':>8} {'momentum KiB':>13} {'Adam KiB':>9} {'Adam/params':>12} {'save ms':>8}")
_folder = tempfile.mkdtemp()
for _h in (16, 64, 256, 1024):
    _sizes = []
    for _make in (lambda ps: SGD(ps, lr=0.1), lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps)):
        _model = Sequential(Linear(64, _h, rng=0), ReLU(), Linear(_h, 10, rng=1))
        _trainer = Trainer(_model, _make(_model.parameters()), CrossEntropyLoss(), rng=0)
        _trainer.train_epoch(DataLoader(TensorDataset(_Xtr[:64], _ytr[:64]), batch_size=64))  # creates the state
        _p = os.path.join(_folder, "c.npz")
        _ms = _median_time(lambda: _trainer.save_checkpoint(_p), repeat=3) * 1e3
        _sizes.append(os.path.getsize(_p))
    _n = sum(p.size for p in _model.parameters())
    print(f"{_h:>7} {_n:>9,} {_n * 4 / 1024:>10.1f} {_sizes[0] / 1024:>8.1f} {_sizes[1] / 1024:>13.1f} "
          f"{_sizes[2] / 1024:>9.1f} {_sizes[2] / (_n * 4):>12.2f} {_ms:>8.2f}")
shutil.rmtree(_folder)

# %% [markdown]
# ## Summary
#
# | piece | what it does | PyTorch |
# |---|---|---|
# | `iterate_batches` | the loader's batches, gathered with one fancy index per tensor | a `Sampler` with a batched `__getitems__` |
# | `clip_grad_norm_` | one global norm, every gradient scaled in place, returns the norm | `torch.nn.utils.clip_grad_norm_` |
# | `cosine_lr`, `CosineAnnealingLR` | linear warm-up, then half a cosine per `T_max` steps | `LinearLR` + `CosineAnnealingLR` in `SequentialLR` |
# | `Trainer.train_epoch` | the five-line loop, with accumulation and clipping | your loop; Lightning's `Trainer` |
# | `Trainer.evaluate` | eval mode, `no_grad()`, loss and accuracy | `model.eval()` + `torch.no_grad()` |
# | `save_checkpoint` / `load_checkpoint` | all of the state, one `.npz`, atomic, no pickle | `torch.save` / `torch.load(weights_only=True)` |
# | `fit` | epochs, validation, checkpoints, at most ~20 progress lines | `Trainer.fit`, `model.fit` |
#
# Next (module 09) you build convolutions; the `Trainer` trains the CNN without a change.

# %% [markdown]
# ## ML-systems questions
#
# Answer each question in the cell below it, in a few paragraphs. Refer to your code and to the
# numbers your analysis cell printed.

# %% [markdown]
# ### q1: What a checkpoint must hold, and what it costs
#
# Your analysis measured checkpoint sizes for SGD, SGD with momentum and Adam against the number
# of parameters. Explain the ratios from your `save_checkpoint` and module 07's optimizer state.
# How large is a full checkpoint of a 7B-parameter model trained with Adam in float32, how long
# does writing it take at a few GB/s, and how often can a run afford to save? What goes wrong
# when a run resumes from a checkpoint that holds only the weights, or a half-written file, and
# how do your `atomic_savez` and the RNG state in `meta` prevent it?

# %% [markdown] tags=["answer"] question="q1"
# The checkpoint is the parameters plus the optimizer state plus a few hundred bytes of JSON:
# the analysis shows about 1.0x the float32 parameter bytes for plain SGD (no state), about 2.0x
# for SGD with momentum (one `momentum_buffer` per parameter) and about 3.0x for Adam
# (`exp_avg` and `exp_avg_sq`); for the smallest model the fixed zip and JSON overhead is
# visible, for the larger ones the ratios converge to 1, 2 and 3. `save_checkpoint` writes
# every array of `model.state_dict()` and every array entry of `optimizer.state_dict()` under its
# own name, and the counters (Adam's `step`), hyperparameters, scheduler, history and RNG state
# into `meta`.
#
# A 7B model in float32 with Adam is 28 GB of weights + 56 GB of moments = 84 GB per checkpoint
# (gradients are not saved: they are recomputed). At 2-5 GB/s that is 20-40 s of writing, more on
# network storage, and the step stalls unless the save runs asynchronously from a copy in host
# memory. Saving every few hundred or thousand steps bounds the lost work; the cost is I/O and
# storage (keep the last few, not all). Sharded checkpoints (each data-parallel rank writes its
# ZeRO shard) spread the write.
#
# Weights only: Adam restarts with m = v = 0 and step 0, so bias correction makes the first
# steps full learning-rate-sized steps in every coordinate (a loss spike), momentum loses its
# velocity, the schedule restarts at warm-up or at the top of the cosine, and the data order
# differs. A half-written file (killed during the write) would be unreadable *and* would have
# replaced the previous good checkpoint; `atomic_savez` writes a temporary file in the same
# folder, fsyncs it and `os.replace`s it, so the name always points at a complete file, and the
# section 5 check shows a resumed run reproducing the uninterrupted losses bit for bit because
# the shared Generator's `bit_generator.state` is restored in place.

# %% [markdown]
# ### q2: Batch size, time per epoch and gradient accumulation
#
# Using your table of time per epoch against batch size, explain where the time of a step goes
# (the matrix products versus everything else) and why examples per second rise with the batch
# size. What did the fast batch path in `iterate_batches` save, and why? How does gradient
# accumulation change the memory and the time of an epoch compared with one large batch, and
# when do you need it? What would change on a GPU?

# %% [markdown] tags=["answer"] question="q2"
# Each step costs a fixed overhead (Python calls, one Tensor and graph node per operation, a
# topological sort, Adam's per-parameter update with several temporaries) plus the arithmetic,
# which for a 32 x 64 @ 64 x 128 product is a few microseconds. With batch 8 there are 180 steps
# per epoch, so the epoch is almost all overhead; the table shows the examples per second rising
# several-fold from batch 8 to 256 while the number of steps falls 32x, until the matrix products
# start to dominate. The flip side is in the accuracy column: fewer updates per epoch, so large
# batches need more epochs (or a larger learning rate) to reach the same accuracy. One trap the
# table can show: with the default multi-threaded BLAS on a busy 2-core machine, batches of 64
# and more can be *slower* per epoch, because OpenBLAS splits these small products over threads
# that then wait for a free core; with `OPENBLAS_NUM_THREADS=1` the curve is smooth again.
#
# The module 05 loader builds each batch with `batch_size` calls to `dataset[i]` (each making
# Tensors through autograd's GetItem) and an `np.stack`; `iterate_batches` does one fancy index
# per tensor, `X[indices]`, the same batches and shuffling. The table shows the per-example path
# costing as much as or more than the training step itself at small batch sizes, and the fast
# path close to zero: the cost was Python calls per example, not memory traffic.
#
# Gradient accumulation over k micro-batches keeps the activation memory of one micro-batch
# (activations scale with the batch, module 06) while giving the gradient of the k-times larger
# batch, as the section 4 check shows (same weights). Time: the same number of examples run
# through small, less efficient matrix products, k times the per-step overhead for forward and
# backward, but only one optimizer step per k micro-batches. You need it when the batch size that
# training needs (large-batch LLM training uses millions of tokens per step) does not fit in the
# accelerator's memory, also combined with data parallelism. On a GPU the per-op overhead is a
# kernel launch (~5-10 us) and the arithmetic is far faster, so small batches are even more
# overhead-bound: GPUs need large batches (or CUDA graphs, fused kernels) to be busy, and memory
# becomes the limit that accumulation works around.

# %% [markdown]
# ### q3: Schedules, warm-up and clipping: keeping long runs stable
#
# Why do large runs use a warm-up followed by a cosine decay rather than a constant learning
# rate, and what does the schedule look like in your `cosine_lr` (what happens past `T_max`)?
# What does `clip_grad_norm_` protect against, why does it use one global norm rather than
# clipping each parameter, and what does the returned norm tell you during training? How do
# these interact with gradient accumulation (when must clipping happen) and with resuming from a
# checkpoint?

# %% [markdown] tags=["answer"] question="q3"
# Early in training the weights are random, gradients are large and Adam's second-moment
# estimate v is built from few samples, so its per-coordinate step size is unreliable; a full
# learning rate then can blow the loss up (divergence, dead units). Warm-up ramps lr linearly,
# `base_lr * (t + 1) / (warmup + 1)` in `cosine_lr`, never zero, until the statistics settle.
# The cosine then keeps lr high for long (fast progress), decays fastest in the middle and ends
# slowly at `eta_min` so the last steps fine-tune without noise, which typically ends lower than
# a constant lr or step decay. Past `T_max` the formula, like PyTorch's, rises again (a period of
# 2 T_max), so `T_max` must be the run's number of optimizer steps; it is stepped per optimizer
# step, not per micro-batch or epoch.
#
# `clip_grad_norm_` protects against the rare huge gradient (outlier batch, loss spike,
# exploding RNN/transformer gradients) that would throw the weights far in one step. One global
# norm rescales all gradients by the same factor, keeping the update's direction; clipping each
# parameter separately would distort the direction. The returned pre-clip norm is the best
# health signal of a run: a slowly drifting or suddenly spiking norm precedes divergence, and
# large runs log it every step (and skip steps whose norm is not finite).
#
# With accumulation, the gradient of the full batch exists only after the k-th micro-batch, so
# clipping must happen there, right before `optimizer.step()` (as `train_epoch` does); clipping
# each micro-batch would clip a different quantity. Resuming must restore the scheduler's
# `last_epoch` (saved in `meta`), or the learning rate jumps back to the warm-up or the top of
# the cosine, producing exactly the instability warm-up was meant to avoid; clipping has no
# state, but the Adam moments it feeds into must be restored too.
