from .base import StagedBackbone
from .iresnet import IResNet, iresnet
from .mobilefacenet import MobileFaceNet


def get_backbone(name: str, **kwargs) -> StagedBackbone:
    """'r18', 'r34', 'r50', 'r100' (IResNet) or 'mobilefacenet'."""
    if name == "mobilefacenet":
        return MobileFaceNet(**kwargs)
    if name.startswith("r") and name[1:].isdigit():
        return iresnet(int(name[1:]), **kwargs)
    raise ValueError(f"unknown backbone {name!r}: expected r18, r34, r50, r100 or mobilefacenet")


__all__ = ["StagedBackbone", "IResNet", "MobileFaceNet", "get_backbone", "iresnet"]
