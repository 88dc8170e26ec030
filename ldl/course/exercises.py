"""Self-checks for the notebooks' exercises: feedback that helps, not just pass/fail.

Each check prints what is right or what was probably missed, and returns ``True`` when the
answer is correct, so a notebook can also ``assert`` it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
from torchvision.transforms import v2

from ldl.models import feature_side, unfreeze


def check_flatten_size(answer: int, image_size: int = 150, channels: int = 128) -> bool:
    """Lesson 0: how many numbers does ``Flatten`` pass to the dense layer?

    For the recap CNN, each block is a 3x3 convolution without padding (trims 2 pixels)
    and a 2x2 max-pool (halves, rounding down), and the last block has ``channels`` filters.
    """
    side = feature_side(image_size)
    correct = channels * side * side
    if answer == correct:
        print(f"Correct: {channels} channels x {side} x {side} = {correct} numbers per image.")
        return True
    no_trim = image_size
    for _ in range(4):
        no_trim //= 2
    hints = {
        side * side: f"That is one channel's map ({side} x {side}); Flatten keeps all {channels} channels.",
        channels * no_trim * no_trim: "Close: remember the 3x3 convolution has no padding, so it trims 2 "
        "pixels (side - 2) before each pooling halves the side.",
        channels * image_size * image_size // 256: "You divided by 16 in each direction without rounding down "
        "and without the convolution's trim; go block by block: (side - 2) // 2.",
        3 * image_size * image_size: "That is the size of the input image; follow it through the 4 blocks.",
    }
    print(hints.get(answer, f"Not quite ({answer}). Track the side through the blocks: {image_size} -> "
                            f"({image_size} - 2) // 2 -> ... four times, then multiply by the channels."))
    return False


def lesson1_target_pipeline() -> Callable[[torch.Tensor], torch.Tensor]:
    """The hidden pipeline of lesson 1's "match this grid" exercise (no peeking in class!)."""
    return v2.Compose([v2.RandomHorizontalFlip(p=1.0), v2.RandomEqualize(p=1.0)])


def check_matching_pipeline(pipeline: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor) -> bool:
    """Lesson 1: does ``pipeline`` turn ``image`` into exactly what the target pipeline makes?

    Args:
        pipeline: the student's transform, applied to a (3, H, W) uint8 image.
        image: (3, H, W) uint8.
    """
    target = lesson1_target_pipeline()(image)
    try:
        produced = pipeline(image.clone())
    except Exception as error:  # the student's code: report, don't crash the notebook
        print(f"Your pipeline raised {type(error).__name__}: {error}. It receives a (3, H, W) uint8 tensor.")
        return False
    if not isinstance(produced, torch.Tensor) or produced.shape != target.shape:
        print(f"The target keeps the shape {tuple(target.shape)} and dtype uint8; yours gave "
              f"{getattr(produced, 'shape', type(produced).__name__)}. Leave out resizing, cropping and ToDtype.")
        return False
    if torch.equal(produced, target):
        print("Correct: a horizontal flip and histogram equalisation (the order does not matter here).")
        return True
    hints = [
        (v2.functional.horizontal_flip(image), "The mirror image is right; now the colours: the target's "
         "histogram is spread over the whole 0-255 range. Which photometric transform does that?"),
        (v2.functional.equalize(image), "The colours are right (equalisation); compare the left and right edges "
         "of the target with the original."),
        (v2.functional.equalize(v2.functional.vertical_flip(image)), "Right colours, wrong mirror: flip left-right, "
         "not top-bottom."),
    ]
    for candidate, hint in hints:
        if torch.equal(produced, candidate):
            print(hint)
            return False
    print("Not yet. Look at the target grid: what moved (geometry), and how did the colours change? "
          "Use p=1.0 so each transform always applies.")
    return False


def check_cutmix_lambda(answer: float, box: tuple[int, int, int, int], image_size: tuple[int, int],
                        sampled_lambda: float | None = None) -> bool:
    """Lesson 1: the label weight of the *first* image after CutMix pasted ``box`` into it.

    Args:
        answer: the student's lambda.
        box: ``(x1, y1, x2, y2)`` of the pasted patch, already clipped to the image.
        image_size: ``(H, W)``.
        sampled_lambda: the lambda drawn from the Beta distribution before the box was clipped.
    """
    height, width = image_size
    pasted = (box[2] - box[0]) * (box[3] - box[1]) / (height * width)
    correct = 1.0 - pasted
    if abs(answer - correct) < 5e-3:
        print(f"Correct: the patch covers {pasted:.3f} of the image, so the first image keeps {correct:.3f} "
              "of the label.")
        return True
    if abs(answer - pasted) < 5e-3:
        print("That is the share of the *pasted* image. Lambda is what is left of the first image: 1 - that.")
    elif sampled_lambda is not None and abs(answer - sampled_lambda) < 5e-3:
        print("That is the lambda drawn before the box was clipped at the border. The label must follow the "
              "pixels actually pasted: count the box's area after clipping.")
    else:
        print(f"Not quite. Area of the box = (x2 - x1) * (y2 - y1); divide by H * W = {height} * {width}; "
              "lambda = 1 - that fraction.")
    return False


def check_dropout_scale(answer: float, p: float) -> bool:
    """Lesson 2: by what factor does inverted dropout multiply the surviving activations?"""
    correct = 1 / (1 - p)
    if abs(answer - correct) < 1e-3:
        print(f"Correct: 1 / (1 - {p}) = {correct:.3f}, so the expected activation stays the same and "
              "evaluation needs no rescaling.")
        return True
    if abs(answer - (1 - p)) < 1e-3:
        print("That is the factor classic (non-inverted) dropout applies at *evaluation*; inverted dropout "
              "scales up the survivors at training time instead.")
    elif abs(answer - 1 / p) < 1e-3:
        print(f"Careful: p = {p} is the probability to *drop*; the survivors are a fraction 1 - p.")
    else:
        print("Not quite. A fraction 1 - p of the activations survive; to keep the expected sum unchanged, "
              "by what must each survivor be multiplied?")
    return False


def check_batchnorm_sizes(learned: int, buffers: int, channels: int) -> bool:
    """Lesson 2: how many learned parameters and running-statistic numbers has BatchNorm2d(channels)?"""
    ok_learned, ok_buffers = learned == 2 * channels, buffers == 2 * channels
    if ok_learned and ok_buffers:
        print(f"Correct: gamma and beta ({2 * channels} learned), running mean and variance ({2 * channels} "
              "numbers updated by averaging, not by gradients).")
        return True
    if not ok_learned:
        print(f"Learned parameters: one scale (gamma) and one shift (beta) per channel. {learned} is not "
              f"2 x {channels}.")
    if not ok_buffers:
        print("Buffers: the running mean and the running variance, one of each per channel (the step "
              "counter num_batches_tracked does not count here).")
    return False


def check_he_std(answer: float, fan_in: int) -> bool:
    """Lesson 3: the standard deviation of He (Kaiming) normal initialisation for a ReLU layer."""
    correct = (2 / fan_in) ** 0.5
    if abs(answer - correct) < 1e-3 * max(1.0, correct):
        print(f"Correct: sqrt(2 / fan_in) = sqrt(2 / {fan_in}) = {correct:.4f}. The 2 makes up for ReLU "
              "zeroing the negative half of its inputs, which halves their second moment E[x²].")
        return True
    if abs(answer - (1 / fan_in) ** 0.5) < 1e-3:
        print("That is sqrt(1 / fan_in), right for a linear layer; ReLU keeps only half of the signal's "
              "second moment E[x²], so He doubles the weights' variance: the gain is sqrt(2).")
    elif abs(answer - 2 / fan_in) < 1e-4:
        print("That is the variance; the standard deviation is its square root.")
    else:
        print("Not quite. He initialisation keeps the pre-activations' variance steady through ReLU layers: "
              "Var(w) = 2 / fan_in.")
    return False


def check_head_parameters(answer: int, in_features: int, num_classes: int) -> bool:
    """Lesson 4: how many parameters has a new ``nn.Linear(in_features, num_classes)`` head?"""
    correct = in_features * num_classes + num_classes
    if answer == correct:
        print(f"Correct: {in_features} x {num_classes} weights + {num_classes} biases = {correct:,}. "
              "That is all a frozen network has to learn.")
        return True
    if answer == in_features * num_classes:
        print(f"Close: {in_features} x {num_classes} weights, and each output also has a bias.")
    elif answer == in_features + num_classes:
        print("Every input feature connects to every class: the weights form a matrix, not a list.")
    else:
        print(f"Not quite ({answer:,}). A linear layer has one weight per (input, output) pair plus one bias "
              "per output.")
    return False


def check_differential_lrs(answer: list[float], head_lr: float, factor: float, n_groups: int) -> bool:
    """Lesson 4: the fine-tuning rates ``param_groups`` gives its chunks, earliest (input side) first.

    As the lesson fine-tunes: ``base_lr`` is a tenth of the head's rate from the LR range test
    (``head_lr``), the chunk next to the output gets it, each earlier chunk ``factor`` times less.
    """
    base_lr = head_lr / 10
    correct = [base_lr / factor ** (n_groups - 1 - i) for i in range(n_groups)]

    def matches(rates: list[float]) -> bool:
        return len(answer) == n_groups and all(abs(a - c) <= 1e-6 * c for a, c in zip(answer, rates))

    if matches(correct):
        print(f"Correct: {', '.join(f'{c:.0e}' for c in correct)}. The head learns fastest; the early layers, "
              "whose edge and texture detectors suit any photo, barely move.")
        return True
    if len(answer) != n_groups:
        print(f"Give one rate per chunk: {n_groups} numbers.")
    elif matches(list(reversed(correct))):
        print("Reversed: the chunk next to the output gets the full rate; earlier chunks get less.")
    elif matches([rate * 10 for rate in correct]):
        print(f"These start from the head's own rate, {head_lr:g}. Fine-tuning peaks at a tenth of it, "
              f"base_lr = {base_lr:g}, so that the pretrained weights move gently (section 6).")
    else:
        print(f"Not quite. The last chunk gets base_lr = head_lr / 10 = {base_lr:g}; each earlier one gets "
              f"{factor:g} times less.")
    return False


def check_trainable_count(answer: int, model: torch.nn.Module, from_: str) -> bool:
    """Lesson 4: how many parameters are trainable after ``unfreeze(model, from_=from_)``?

    Computed on a copy, so the student's model keeps its current frozen/trainable state.
    """
    probe = unfreeze(copy.deepcopy(model), from_=from_)
    correct = sum(p.numel() for p in probe.parameters() if p.requires_grad)
    total = sum(p.numel() for p in probe.parameters())
    if answer == correct:
        print(f"Correct: {correct:,} of {total:,} parameters ({correct / total:.0%}) train from {from_!r} on.")
        return True
    if answer == total:
        print("That is every parameter: unfreeze(from_=...) keeps the groups before from_ frozen.")
    else:
        print(f"Not quite ({answer:,}). Add the trainable column of trainable_table for the group {from_!r} "
              "and every group after it.")
    return False


def check_patch_count(answer: int, image_size: int, patch_size: int) -> bool:
    """Lesson 5: how many tokens enter ViT's transformer for a square image (patches + class token)?"""
    patches = (image_size // patch_size) ** 2
    correct = patches + 1
    if answer == correct:
        print(f"Correct: ({image_size} / {patch_size})^2 = {patches} patches, plus the class token: {correct}. "
              "The position embeddings must be interpolated to this new grid.")
        return True
    if answer == patches:
        print("Close: those are the patches; ViT puts one more token in front, the class token.")
    elif answer == image_size // patch_size:
        print("That is one row of patches; the grid is square.")
    else:
        print(f"Not quite ({answer}). Count patches per side ({image_size} / {patch_size}), square it, add one.")
    return False


def check_vit_macs_growth(answer: float, from_size: int, to_size: int, patch_size: int) -> bool:
    """Lesson 5: by what factor grows attention's ``Q K^T`` cost when the image side grows?

    The number of tokens grows with the area, (to/from)^2, and ``Q K^T`` compares every
    token with every other: (tokens)^2, so the side ratio to the 4th power (the class token aside).
    """
    tokens_from, tokens_to = (from_size // patch_size) ** 2, (to_size // patch_size) ** 2
    correct = (tokens_to / tokens_from) ** 2
    if abs(answer - correct) <= 0.05 * correct:
        print(f"Correct: {tokens_from} -> {tokens_to} tokens ({tokens_to / tokens_from:g}x), and every token meets "
              f"every other: {correct:g}x. The linear layers grow only {tokens_to / tokens_from:g}x, which is why "
              "Swin restricts attention to windows.")
        return True
    if abs(answer - tokens_to / tokens_from) <= 0.05 * tokens_to / tokens_from:
        print("That is how the number of tokens grows; attention compares every pair of tokens.")
    elif abs(answer - to_size / from_size) < 1e-6:
        print("That is the side; the number of patches grows with the area.")
    else:
        print("Not quite. How many tokens at each size? And how does the number of token pairs grow?")
    return False


def check_double_descent_peak(answer: int, train_photos: int) -> bool:
    """Lesson 6: how many random features will the test error peak at, with ``train_photos`` photos?

    The peak sits at the interpolation threshold: as many features (parameters per class of
    the fitted layer) as training photos, where the fit first becomes exact.
    """
    if abs(answer - train_photos) <= 0.1 * train_photos:
        print(f"Right: about {train_photos} features, one per training photo. With fewer, the least-squares fit "
              "cannot pass through every photo; with exactly as many it just can, and the only weights that do "
              "are huge and wild; with more, the minimum-norm fit among many exact ones gets smoother. Run the cell "
              "below and see the peak land there.")
        return True
    if abs(answer - 2 * train_photos) <= 0.1 * train_photos:
        print("That is where the peak was with twice the photos. The peak follows the number of training photos, "
              "not the model: halve the photos and it moves with them.")
    elif answer <= 0:
        print("Give a number of random features: where do you expect the test error to be highest?")
    else:
        print(f"Not quite. Where can a linear fit on N features first pass exactly through all {train_photos} "
              "training photos (N equations, N unknowns)?")
    return False


def check_capacity_choice(answer: int | None, widths: Sequence[int], val_loss_mean: Sequence[float],
                          val_loss_sd: Sequence[float]) -> bool:
    """Lesson 6: choose a capacity (hidden units) from the validation curve, not from training or test.

    Any width whose mean validation loss lies within one sd of the lowest mean is a defensible
    choice: the curve cannot tell them apart.
    """
    widths = list(widths)
    if answer not in widths:
        print(f"Choose one of the widths that were trained: {widths}.")
        return False
    best = min(range(len(widths)), key=lambda i: val_loss_mean[i])
    chosen = widths.index(answer)
    margin = val_loss_mean[chosen] - val_loss_mean[best]
    if margin <= max(val_loss_sd[best], val_loss_sd[chosen]):
        print(f"Defensible: {answer} hidden units have a validation loss of {val_loss_mean[chosen]:.3f}, within the "
              f"spread over seeds of the lowest ({val_loss_mean[best]:.3f} at {widths[best]} units). Among widths the "
              "curve cannot tell apart, the smaller is cheaper. The test photos below say how it does, once.")
        return True
    if chosen == len(widths) - 1:
        print(f"{answer} units fit the training photos best, but the validation loss is what estimates new photos: "
              f"it is {margin:.3f} above the lowest. More capacity is not free on a few hundred photos.")
    else:
        print(f"{answer} hidden units sit {margin:.3f} above the lowest validation loss ({widths[best]} units), more "
              "than the spread over seeds: pick a width near the bottom of the validation curve.")
    return False


def check_range_test_choice(answer: float, min_loss_lr: float, suggestion: float) -> bool:
    """Lesson 7: read a learning rate off a range test (``ldl.train.lr_find``).

    Defensible: below the rate of the lowest smoothed loss (where the loss is about to blow
    up) by at least 3x, and no lower than a tenth of the steepest-descent suggestion.
    """
    if not answer > 0:
        print("Give a positive learning rate, read off the range test's plot (e.g. 3e-3).")
        return False
    if answer > min_loss_lr / 3:
        print(f"Too close to the edge: at {min_loss_lr:.1e} the loss is lowest only because the next rates blow it "
              f"up. Training for many steps at {answer:.1e} is likely to diverge; take a rate about ten times "
              "smaller, where the curve still falls steeply.")
        return False
    if answer < suggestion / 10:
        print(f"Safe but slow: at {answer:.1e} the range test's loss had hardly started to fall (the steepest fall "
              f"is near {suggestion:.1e}). With a fixed number of epochs, a rate this small underfits.")
        return False
    print(f"Defensible: {answer:.1e} lies where the loss falls, below the edge at {min_loss_lr:.1e}. "
          "Now train with it and compare with the baseline on the validation photos.")
    return True


def check_scaled_rate(answer: float, base_lr: float, base_batch: int, new_batch: int) -> bool:
    """Lesson 7: the linear scaling rule, batch × k ⇒ learning rate × k (Goyal et al. 2017)."""
    expected = base_lr * new_batch / base_batch
    if math.isclose(answer, expected, rel_tol=0.02):
        print(f"Right: the batch grows {new_batch / base_batch:g}x, so the rate does too: {expected:g}. Each step "
              f"now averages {new_batch / base_batch:g}x as many photos, and there are {new_batch / base_batch:g}x "
              "fewer steps per epoch: the larger step makes up the distance. Warm up to it over the first steps.")
        return True
    if math.isclose(answer, base_lr, rel_tol=0.02):
        print("That keeps the rate fixed: with k times fewer steps per epoch, the weights travel about k times less "
              "far in the same epochs. Section 5 measured what that costs.")
    elif math.isclose(answer, base_lr * math.sqrt(new_batch / base_batch), rel_tol=0.02):
        print("That is the square-root rule, sometimes used with Adam; the slides' rule (and Goyal et al.'s, for "
              "SGD with momentum) is linear.")
    else:
        print(f"Not quite: how many times larger is the new batch than {base_batch}? Multiply {base_lr:g} by that.")
    return False
