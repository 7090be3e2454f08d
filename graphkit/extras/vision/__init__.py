"""Vision backbones of the catalogue, with the parameter counts of their papers."""

from graphkit.extras.vision.kimianet import (
    KimiaNet,
    convert_kimianet_keras,
    keras_densenet121_to_state_dict,
    kimianet,
    kimianet_features,
)
from graphkit.extras.vision.ph_resnet import PHBasicBlock, PHBottleneck, PHResNet, ph_resnet
from graphkit.extras.vision.simplenet import (
    SimpleNet,
    simplenet_cifar_5m,
    simplenet_cifar_310k,
    simplenet_cifar_460k,
    simplenet_imagenet_5m,
    simplenet_imagenet_9m,
)
from graphkit.extras.vision.vovnet import VoVNet, vovnet27_slim, vovnet39, vovnet57

__all__ = [
    "KimiaNet",
    "PHBasicBlock",
    "PHBottleneck",
    "PHResNet",
    "SimpleNet",
    "VoVNet",
    "convert_kimianet_keras",
    "keras_densenet121_to_state_dict",
    "kimianet",
    "kimianet_features",
    "ph_resnet",
    "simplenet_cifar_310k",
    "simplenet_cifar_460k",
    "simplenet_cifar_5m",
    "simplenet_imagenet_5m",
    "simplenet_imagenet_9m",
    "vovnet27_slim",
    "vovnet39",
    "vovnet57",
]
