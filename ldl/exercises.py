"""Self-checks for the notebooks' exercises: feedback that helps, not just pass/fail.

Each check prints what is right or what was probably missed, and returns ``True`` when the
answer is correct, so a notebook can also ``assert`` it.
"""

from __future__ import annotations

from ldl.models import feature_side


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
