"""Numbers several wings need, written once.

``IMAGENET_MEAN`` and ``IMAGENET_STD``: the per-channel (R, G, B) mean and standard deviation
of ImageNet's photos in [0, 1]. Every pretrained network of the course was trained on photos
normalised with them, so the course normalises with them too, and undoes it to show a photo.
"""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
