"""A site profile: photos an operator taught from their own camera, and the classifier they make.

Every installation is one camera, one background, one light: where a general model is weakest
and a handful of examples help most. A profile is a folder ::

    PROFILE/
      profile.json      classes (with their bins) and photos, written last: the commit point
      photos/<class>/   the taught photos, copied in (never referenced where they were)
      embeddings.npz    each photo's embedding and base-cascade probabilities, for one model

Everything is written to a temporary name and renamed into place, so a profile read at any
moment (or after a crash) is whole. Embeddings are a cache: a newer model recomputes them from
the photos, so a profile can be copied between machines and survives upgrades.

``ProfileHead`` is the classifier: the base cascade's probabilities, mixed with a
nearest-prototype classifier over the taught classes where an item looks like something taught
(see ``ProfileHead.apply``). An empty profile is no profile: the base labels, bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from waste_vision.errors import UserError
from waste_vision.files import write_atomically
from waste_vision.images import IMAGE_SUFFIXES, ImageReadError, read_rgb
from waste_vision.labels import EMPTY, UNCERTAIN, Bin, base_bin

if TYPE_CHECKING:
    from waste_vision.model.cascade import Cascade, CascadeResult, DecisionRule, StageResult

FORMAT = 1
PROFILE_FILE = "profile.json"
EMBEDDINGS_FILE = "embeddings.npz"
PHOTOS_DIR = "photos"
EMBEDDING_KIND = "material-tail-pooled"
CLASS_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
RESERVED = {UNCERTAIN, EMPTY, "recyclable", "other"}

# How strongly similarity to a taught class counts (cosine units per factor e), and the other
# constants of ``ProfileHead``: chosen on validation data (labtrash's validation sessions, held-out
# battery photos, the VALIDATION splits; work/teach/), never on the photos reported on.
TEMPERATURE = 0.1  # a base class taught from site photos
NEW_CLASS_TEMPERATURE = 0.02  # a new class: a sharp rise once above its floor
TAUGHT_PRIOR = 10.0  # an item above a taught base class's floor: that class's weight times this
REFERENCE_QUANTILE = 0.98  # a taught class acts above what 98% of other classes' photos reach
# A new class taught from 2+ photos also has a compactness gate, in the embedding as the model
# gives it (not centred): an item's cosine similarity to the class's raw prototype must reach
# this fraction of the taught photos' own mean leave-one-out similarity. Centring tells a
# battery from ordinary photos; it also puts every item of no known class (shoes, clothes,
# batteries) near the same spot far from the reference, so that a taught battery drew in 74% of
# them. Uncentred, held-out batteries stand above those items with an AUROC of 0.97 (0.64
# centred): the gate keeps them out (work/teach/e3*.py, e11.log). It only ever takes a new
# class's evidence away. (Lowering the new class's reference floor to the 95th percentile as
# well was best on validation but cost 2 points of Kaggle TEST accuracy at k = 10: dropped,
# docs/teach.md.)
RAW_GATE = 0.55
NEIGHBOURS = 5  # an item's nearest reference photos, for how ordinary it looks
NEW_CLASS_PRIOR = 0.5  # a new class's weight per unit of evidence, against the base classes
# A new class's weight is multiplied by how unknown the base cascade finds the item (1 - its top
# probability, scaled to 0..1) to this power: the base models were trained to spread their
# probability over items of no class they know, so an item they are sure of needs much more
# evidence to be a new class than one they are not. (Lowering a new class's floor by that
# unknownness as well was best on validation but changed 10.5% of the TEST labels: dropped,
# docs/teach.md.)
UNKNOWN_POWER = 2.0


class ProfileError(UserError):
    """A profile folder, class name or photo the user must fix (exit 2)."""


def check_class_name(name: str) -> str:
    if not CLASS_NAME.match(name or "") or name in RESERVED:
        raise ProfileError(
            f"class name {name!r} is not a simple word: use lower-case letters, digits, '-' or "
            f"'_' (up to 32, starting with a letter), and none of {', '.join(sorted(RESERVED))}"
        )
    return name


@dataclass(frozen=True)
class Photo:
    file: str  # relative to the profile folder
    label: str
    sha256: str
    added: float  # Unix time


@dataclass(frozen=True)
class Taught:
    """One photo's model view: what ``ProfileHead`` needs, for one model version."""

    embedding: np.ndarray  # (d,) float32
    base: np.ndarray  # (len(base labels),) the base cascade's probabilities


class SiteProfile:
    """One profile folder. Methods that change it write it whole before they return."""

    def __init__(self, root: Path, classes: dict[str, Bin], photos: list[Photo]):
        self.root = Path(root)
        self.classes = dict(classes)
        self.photos = list(photos)
        self._batch: dict[str, Taught] | None = None  # the cache, while a batch adds photos

    # --- reading and writing -------------------------------------------------------------
    @classmethod
    def open(cls, root: Path, create: bool = False) -> SiteProfile:
        """The profile in ``root``; a new empty one when ``create`` and the folder is missing
        or empty. A folder with other things in it is never taken over."""
        root = Path(root)
        meta = root / PROFILE_FILE
        if not meta.exists():
            if root.exists() and (not root.is_dir() or any(root.iterdir())):
                raise ProfileError(
                    f"{root} is not a site profile (no {PROFILE_FILE}); give an empty or new "
                    "folder to start one"
                )
            if not create:
                raise ProfileError(
                    f"{root} is not a site profile yet; teach it photos first "
                    "(waste-vision teach add PROFILE CLASS PHOTO...)"
                )
            return cls(root, {}, [])
        try:
            raw = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ProfileError(f"{meta} is not readable JSON ({exc}); restore it") from None
        if not isinstance(raw, dict) or raw.get("kind") != "waste-vision site profile":
            raise ProfileError(f"{meta} is not a waste-vision site profile")
        if not isinstance(raw.get("format"), int) or raw["format"] > FORMAT:
            raise ProfileError(
                f"{root} was made by a newer waste-vision (profile format {raw.get('format')!r}, "
                f"this one reads {FORMAT}); upgrade, or teach a new profile"
            )
        if raw.get("embedding", {}).get("kind") != EMBEDDING_KIND:
            raise ProfileError(
                f"{root} was made by an incompatible model (embedding "
                f"{raw.get('embedding', {}).get('kind')!r}, this one gives {EMBEDDING_KIND!r}); "
                "teach a new profile from its photos"
            )
        try:
            classes = {check_class_name(k): Bin(v["bin"]) for k, v in raw["classes"].items()}
            photos = [
                Photo(p["file"], p["class"], p["sha256"], float(p["added"])) for p in raw["photos"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"{meta} is damaged ({exc!r}); restore it") from None
        return cls(root, classes, [p for p in photos if p.label in classes])

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        raw = {
            "kind": "waste-vision site profile",
            "format": FORMAT,
            "embedding": {"kind": EMBEDDING_KIND},
            "classes": {name: {"bin": str(b)} for name, b in sorted(self.classes.items())},
            "photos": [
                {"file": p.file, "class": p.label, "sha256": p.sha256, "added": p.added}
                for p in self.photos
            ],
        }
        write_atomically(self.root / PROFILE_FILE, json.dumps(raw, indent=1) + "\n")

    @property
    def version(self) -> str:
        """Changes whenever a photo or class does: recorded with each event."""
        key = json.dumps(
            [sorted((k, str(v)) for k, v in self.classes.items())]
            + [(p.label, p.sha256) for p in self.photos]
        )
        return hashlib.sha256(key.encode()).hexdigest()[:12]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(sorted(self.classes), 0)
        for p in self.photos:
            out[p.label] += 1
        return out

    # --- teaching ------------------------------------------------------------------------
    def bin_for(self, label: str, bin_: Bin | str | None, base_labels: Sequence[str]) -> Bin:
        """The bin a class goes in: as given, as already taught, or the base class's own."""
        check_class_name(label)
        known = self.classes.get(label) or (base_bin(label) if label in base_labels else None)
        if bin_ is None:
            if known is None:
                raise ProfileError(
                    f"{label!r} is a new class: say which bin it goes in with --bin "
                    f"({'|'.join(b.value for b in Bin)})"
                )
            return known
        try:
            chosen = Bin(bin_)
        except ValueError:
            raise ProfileError(
                f"bin {bin_!r} is not one of {', '.join(b.value for b in Bin)}"
            ) from None
        if label in base_labels and chosen != base_bin(label):
            raise ProfileError(
                f"{label!r} is a base class, which goes in {base_bin(label)}; leave out --bin"
            )
        return chosen

    def add_image(self, label: str, bin_: Bin, rgb: np.ndarray, cascade: Cascade) -> Photo:
        """Add one photo given as pixels (a crop from the window), saved as PNG."""
        import cv2

        ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise ProfileError("the crop could not be encoded as PNG")
        return self._add_bytes(label, bin_, bytes(data), ".png", rgb, cascade)

    def add_file(self, label: str, bin_: Bin, path: Path, cascade: Cascade) -> Photo:
        """Add one photo file (copied in); ``ImageReadError`` when it is not a readable photo."""
        rgb = read_rgb(path)
        return self._add_bytes(
            label, bin_, Path(path).read_bytes(), Path(path).suffix, rgb, cascade
        )

    def _add_bytes(
        self, label: str, bin_: Bin, data: bytes, suffix: str, rgb: np.ndarray, cascade: Cascade
    ) -> Photo:
        digest = hashlib.sha256(data).hexdigest()
        for p in self.photos:
            if p.sha256 == digest and p.label == label:
                return p  # the same photo twice counts once
        folder = self.root / PHOTOS_DIR / label
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{int(time.time() * 1000):013d}-{digest[:10]}{suffix.lower() or '.jpg'}"
        write_atomically(folder / name, data)
        photo = Photo(f"{PHOTOS_DIR}/{label}/{name}", label, digest, time.time())
        self.classes.setdefault(label, bin_)
        self.photos.append(photo)
        taught = view(cascade, rgb)
        if self._batch is not None:
            self._batch[photo.sha256] = taught  # written once, when the batch ends
        else:
            cache = self._read_cache(cascade)
            cache[photo.sha256] = taught
            self._write_cache(cascade, cache)
        self.save()
        return photo

    @contextmanager
    def batch(self, cascade: Cascade) -> Iterator[SiteProfile]:
        """Add many photos, writing the embeddings cache once at the end instead of once a
        photo (``teach add`` with a folder). Each photo is still committed to profile.json as
        it is added; one whose embedding never reached the cache is recomputed when read."""
        self._batch = self._read_cache(cascade)
        before = set(self._batch)
        try:
            yield self
        finally:
            cache, self._batch = self._batch, None
            if set(cache) != before:  # nothing added: nothing to write (maybe no folder yet)
                self._write_cache(cascade, cache)

    def remove(self, label: str, files: Iterable[str] = (), everything: bool = False) -> int:
        """Remove some of a class's photos (by file name), or the whole class; a class whose
        last photo goes goes with it. Only files this profile copied in are deleted. Returns
        how many photos went."""
        if label not in self.classes:
            raise ProfileError(f"{self.root} has no class {label!r}; see 'teach list'")
        names = {Path(f).name for f in files}
        gone = [
            p
            for p in self.photos
            if p.label == label and (everything or Path(p.file).name in names)
        ]
        if not everything and len(gone) != len(names):
            missing = names - {Path(p.file).name for p in gone}
            raise ProfileError(f"class {label!r} has no photo {sorted(missing)[0]!r}")
        self.photos = [p for p in self.photos if p not in gone]
        emptied = not any(p.label == label for p in self.photos)
        if everything or emptied:
            del self.classes[label]
        self.save()  # the commit point: the files below are no longer part of the profile
        for p in gone:
            (self.root / p.file).unlink(missing_ok=True)
        folder = self.root / PHOTOS_DIR / label
        if (everything or emptied) and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        return len(gone)

    def undo_last(self) -> Photo | None:
        """Remove the photo taught last (the window's Undo)."""
        if not self.photos:
            return None
        last = max(self.photos, key=lambda p: p.added)
        self.remove(last.label, [last.file])
        return last

    # --- the model's view ----------------------------------------------------------------
    def _read_cache(self, cascade: Cascade) -> dict[str, Taught]:
        path = self.root / EMBEDDINGS_FILE
        if not path.exists():
            return {}
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["model"]) != cascade.model_version:
                    return {}  # another model: recomputed from the photos
                return {
                    str(k): Taught(e.astype(np.float32), b.astype(np.float32))
                    for k, e, b in zip(z["keys"], z["embeddings"], z["base"], strict=True)
                }
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            return {}  # a damaged cache is only a cache

    def _write_cache(self, cascade: Cascade, cache: dict[str, Taught]) -> None:
        keys = sorted(cache)
        size = cascade.embedding_size
        buffer = _npz_bytes(
            model=np.array(cascade.model_version),
            keys=np.array(keys, dtype=str),
            embeddings=np.stack([cache[k].embedding for k in keys]).astype(np.float16)
            if keys
            else np.zeros((0, size), np.float16),
            base=np.stack([cache[k].base for k in keys]).astype(np.float32)
            if keys
            else np.zeros((0, 0), np.float32),
        )
        write_atomically(self.root / EMBEDDINGS_FILE, buffer)

    def views(self, cascade: Cascade) -> dict[str, Taught]:
        """Every photo's embedding and base probabilities under ``cascade``'s model, from the
        cache or (another model, a photo added elsewhere) computed from the photo."""
        cache = self._read_cache(cascade)
        missing = [p for p in self.photos if p.sha256 not in cache]
        for p in missing:
            try:
                cache[p.sha256] = view(cascade, read_rgb(self.root / p.file))
            except ImageReadError as exc:
                raise ProfileError(
                    f"{self.root / p.file} (a taught photo) is unreadable ({exc}); remove it "
                    f"with 'teach remove {self.root} {p.label} {Path(p.file).name}'"
                ) from None
        if missing:
            self._write_cache(cascade, cache)
        return cache

    def head(
        self, cascade: Cascade, reference: Reference | None = None, leave_one_out: bool = False
    ) -> ProfileHead:
        """The classifier this profile makes with ``cascade``'s models (with its leave-one-out
        accuracy on the taught photos when asked: ``teach check``)."""
        views = self.views(cascade)
        rows = [(views[p.sha256], p.label) for p in self.photos]
        if reference is None:
            reference = Reference.load(cascade)
        return ProfileHead.fit(
            [t.embedding for t, _ in rows],
            [label for _, label in rows],
            [t.base for t, _ in rows],
            self.classes,
            base_labels(cascade),
            reference,
            self.version,
            leave_one_out,
        )


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def base_labels(cascade: Cascade) -> list[str]:
    """The base cascade's final labels in one list: stage 1's organic, then the materials."""
    return [cascade.stage1.labels[0], *cascade.stage2.labels]


def base_probabilities(s1: StageResult, s2: StageResult) -> np.ndarray:
    """P(organic), then P(recyclable) x P(material) for each material."""
    p1 = np.asarray(s1.probabilities, np.float64)
    return np.concatenate([[p1[0]], p1[1] * np.asarray(s2.probabilities, np.float64)])


def view(cascade: Cascade, rgb: np.ndarray) -> Taught:
    """One photo as the profile keeps it: the base cascade's embedding and probabilities."""
    result = cascade.classify(rgb, all_stages=True, profile=False)
    if result.embedding is None or result.stage2 is None:
        raise ProfileError(
            f"the models in {cascade.manifest.root} give no embeddings; a site profile needs "
            "the shipped models"
        )
    return Taught(result.embedding, base_probabilities(result.stage1, result.stage2))


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class Reference:
    """Embeddings of base-class training photos (shipped beside the models): their mean is the
    origin similarities are measured from, and a taught class must stand out from them
    before it may overrule the base cascade.

    Besides photos of each base class, the file holds photos of a broad class (stage 1's
    ``recyclable``: varied web photos of recyclable items of any material, so that a straw or
    a tissue box has ordinary neighbours). ``covers`` names the base classes a broad label may
    be; such a photo counts as "another class" only for classes it cannot be."""

    center: np.ndarray  # (d,) the mean raw embedding
    embeddings: np.ndarray  # (m, d), centred, unit length
    labels: np.ndarray  # (m,) base label (or broad label) of each
    covers: dict[str, frozenset[str]] = field(default_factory=dict)

    def others(self, name: str) -> np.ndarray:
        """(m,) which photos are surely not of class ``name``."""
        broad = [label for label, names in self.covers.items() if name in names]
        return (self.labels != name) & ~np.isin(self.labels, broad)

    @staticmethod
    def load(cascade: Cascade) -> Reference | None:
        """The models' reference photos; read once per file (and again when it changes)."""
        path = cascade.manifest.reference
        if path is None:
            return None
        try:
            stat = Path(path).stat()
        except OSError as exc:
            raise UserError(
                f"{path} is not readable ({type(exc).__name__}); restore the models folder"
            ) from None
        broad = cascade.stage1.labels[1] if len(cascade.stage1.labels) > 1 else None
        covers = {broad: frozenset(cascade.stage2.labels)} if broad else {}
        key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size, cascade.embedding_size)
        cached = _REFERENCES.get(key)
        if cached is not None and cached.covers == covers:
            return cached
        try:
            with np.load(path, allow_pickle=False) as z:  # made with the float fused model
                raw = z["embeddings"].astype(np.float32)
                labels = np.asarray(z["labels"]).astype(str)
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise UserError(
                f"{path} is not readable ({type(exc).__name__}); restore the models folder"
            ) from None
        if raw.ndim != 2 or raw.shape[1] != cascade.embedding_size or len(labels) != len(raw):
            raise UserError(
                f"{path} does not match the models' embeddings; restore the models folder"
            )
        center = raw.mean(0)
        reference = Reference(center, _unit(raw - center), labels, covers)
        _REFERENCES.clear()  # one models folder at a time is the rule; keep the newest only
        _REFERENCES[key] = reference
        return reference


_REFERENCES: dict[tuple[str, int, int, int], Reference] = {}


@dataclass(frozen=True)
class ProfileHead:
    """The taught classes' prototypes and how strongly they update the base cascade.

    Embeddings are centred on the reference photos' mean and scaled to unit length (cosine
    similarity from the middle of the data, not from the origin of a ReLU layer: it tells a
    battery from a can far better). For an item with embedding ``e`` and base probabilities
    ``p0`` (over the base labels):

    * ``s_c`` = similarity of ``e`` to class ``c``'s prototype (the mean of its taught photos);
      its floor ``f_c`` = the larger of the similarity only ``1 - REFERENCE_QUANTILE`` of the
      reference photos of *other* classes reach, and ``e``'s mean similarity to its
      ``NEIGHBOURS`` nearest reference photos of other classes (an ordinary item is closer to
      ordinary photos of its own kind than to anything taught); ``u`` = how unknown the base
      cascade finds the item (``1 - max p0``, scaled to 0..1: the base models spread their
      probability over items of no class they know);
    * a new class taught from 2+ photos also has a gate ``g_c`` = ``RAW_GATE`` times its
      photos' mean leave-one-out cosine similarity to their prototype, both uncentred (the
      embedding as the model gives it): where ``e``'s uncentred similarity ``z_c`` to that
      prototype falls short of it, the margin ``s_c - f_c`` becomes at most ``z_c - g_c < 0``
      (centring puts every item of no known class near the same spot, far from the reference;
      uncentred, a class's own items stand apart from other unknown items);
    * the evidence for ``c`` is the likelihood ratio ``r_c = exp(max(0, s_c - f_c) / T)``
      (``T`` = ``TEMPERATURE``, or ``NEW_CLASS_TEMPERATURE`` for a new class);
    * a base class becomes ``p0(c) r_c``, times ``TAUGHT_PRIOR`` where the item is above its
      floor (it looks more like the site's own photos of ``c`` than like anything else); a new
      class becomes ``NEW_CLASS_PRIOR (r_c - 1) u^UNKNOWN_POWER`` (an item the base models are
      sure of needs far more evidence to be something new); the result is normalised.

    An item no closer to a taught class than ordinary photos of other classes are has
    ``r = 1`` everywhere: the base result, unchanged (bit for bit); so is one whose most
    probable class after the update is not a taught one (the evidence then only diluted the
    base verdict, turning right answers into ``uncertain``). The constants were chosen on
    validation data (``work/teach``); the leave-one-out accuracy on the taught photos is
    reported (``teach check``). The label is the most probable, its probability the score,
    under the same decision rule (``uncertain`` below ``min_confidence``).
    """

    labels: tuple[str, ...]  # the base labels, then the new classes
    taught: tuple[str, ...]  # the taught classes, in prototype order
    bins: dict[str, Bin]
    center: np.ndarray  # (d,)
    prototypes: np.ndarray  # (len(taught), d)
    thresholds: np.ndarray  # (len(taught),)
    temperature: float
    version: str
    raw_prototypes: np.ndarray | None = None  # (len(taught), d) uncentred, for the gates
    gates: np.ndarray | None = None  # (len(taught),) -inf where a class has no gate
    loo_accuracy: float | None = None  # leave-one-out on the taught photos
    loo_base_accuracy: float | None = None  # the base cascade alone on the same photos
    reference: Reference | None = None
    base_count: int = 6  # how many base labels lead ``labels``

    @property
    def empty(self) -> bool:
        return not self.taught

    @staticmethod
    def fit(
        embeddings: Sequence[np.ndarray],
        labels: Sequence[str],
        base: Sequence[np.ndarray],
        bins: dict[str, Bin],
        base_label_list: Sequence[str],
        reference: Reference | None,
        version: str = "",
        leave_one_out: bool = False,
    ) -> ProfileHead:
        """The head for these taught photos; ``leave_one_out`` also measures it on them, each
        against its class made without it (``loo_accuracy``; the classifier does not need it,
        and it is most of the cost of a rebuild)."""
        new = sorted(c for c in bins if c not in base_label_list)
        all_labels = (*base_label_list, *new)
        base_count = len(base_label_list)
        taught = tuple(sorted(set(labels)))
        if not taught:
            none = np.zeros((0, 0))
            return ProfileHead(
                all_labels,
                (),
                dict(bins),
                np.zeros(0),
                none,
                np.zeros(0),
                TEMPERATURE,
                version,
                base_count=base_count,
            )
        raw = np.stack(embeddings).astype(np.float32)
        center = reference.center if reference is not None else np.zeros(raw.shape[1], np.float32)
        E = _unit(raw - center)
        y = np.array([taught.index(label) for label in labels])
        sums = np.stack([E[y == k].sum(0) for k in range(len(taught))])
        prototypes = _unit(sums)
        thresholds = _thresholds(prototypes, taught, reference, E, y)
        R = _unit(raw)
        raw_sums = np.stack([R[y == k].sum(0) for k in range(len(taught))])
        G = _loo_similarities(R, y, raw_sums)
        raw_own = G[np.arange(len(R)), y]
        gates = np.full(len(taught), -np.inf)
        for k, c in enumerate(taught):
            if c not in base_label_list and int(np.sum(y == k)) >= 2:
                gates[k] = RAW_GATE * float(np.mean(raw_own[y == k]))
        head = ProfileHead(
            all_labels,
            taught,
            dict(bins),
            center,
            prototypes,
            thresholds,
            TEMPERATURE,
            version,
            raw_prototypes=_unit(raw_sums),
            gates=gates,
            reference=reference,
            base_count=base_count,
        )
        if not leave_one_out:
            return head
        P0 = np.zeros((len(E), len(all_labels)))
        P0[:, :base_count] = np.stack(base)
        truth = np.array([all_labels.index(label) for label in labels])
        S = _loo_similarities(E, y, sums)
        u = _unknown(P0[:, :base_count])
        D = head._gate(S - head._floors(E), G)
        P = head._update(P0, D, u)
        return replace(
            head,
            loo_accuracy=float(np.mean(P.argmax(1) == truth)),
            loo_base_accuracy=float(np.mean(P0.argmax(1) == truth)),
        )

    def probabilities(self, embeddings: np.ndarray, base: np.ndarray) -> np.ndarray:
        """(n, len(labels)) updated probabilities for raw embeddings (n, d), base (n, 6)."""
        return self._from_margins(self.margins(embeddings), base)

    def _from_margins(self, D: np.ndarray, base: np.ndarray) -> np.ndarray:
        P0 = np.zeros((len(base), len(self.labels)))
        P0[:, : base.shape[1]] = base
        return self._update(P0, D, _unknown(base))

    def margins(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, len(taught)): how much closer each item is to each taught class than to the
        class's threshold and to its own nearest reference photos of other classes, held
        below 0 where a new class's gate is not reached (raw embeddings (n, d))."""
        raw = np.atleast_2d(embeddings)
        E = _unit(raw - self.center)
        return self._gate(E @ self.prototypes.T - self._floors(E), self._raw_similarities(raw))

    def _raw_similarities(self, raw: np.ndarray) -> np.ndarray | None:
        """(n, len(taught)) cosine similarity of raw embeddings to the uncentred prototypes;
        None when no class has a gate."""
        if self.gates is None or self.raw_prototypes is None or not np.isfinite(self.gates).any():
            return None
        return _unit(np.atleast_2d(raw)) @ self.raw_prototypes.T

    def _gate(self, D: np.ndarray, G: np.ndarray | None) -> np.ndarray:
        """Margins ``D`` with each gated class held below 0 where an item's uncentred
        similarity ``G`` falls short of the class's gate (by as much as it falls short)."""
        if G is None or self.gates is None:
            return D
        short = G - self.gates[None]  # +inf for a class without a gate
        return np.where(short < 0, np.minimum(D, short), D)

    def _floors(self, E: np.ndarray) -> np.ndarray:
        """(n, len(taught)) what each item's similarity to each taught class must exceed: the
        class's threshold, and the mean similarity of the item to its ``NEIGHBOURS`` nearest
        reference photos of other classes (an ordinary can stays a can however much a taught
        battery resembles it)."""
        T = np.repeat(self.thresholds[None], len(E), 0).astype(np.float64)
        reference = self.reference
        if reference is not None and len(reference.labels):
            sims = _similarities(E, reference.embeddings)
            for k, name in enumerate(self.taught):
                others = sims[:, reference.others(name)]
                n = min(NEIGHBOURS, others.shape[1])
                nearest = np.partition(others, -n, axis=1)[:, -n:].mean(1)
                T[:, k] = np.maximum(T[:, k], nearest)
        return T

    def _update(self, P0: np.ndarray, D: np.ndarray, u: np.ndarray) -> np.ndarray:
        P = P0.copy()
        for k, name in enumerate(self.taught):
            j = self.labels.index(name)
            d = np.maximum(D[:, k], 0.0)
            if j < self.base_count:
                prior = np.where(D[:, k] > 0, TAUGHT_PRIOR, 1.0)
                P[:, j] = P0[:, j] * prior * np.exp(d / self.temperature)
            else:
                weight = NEW_CLASS_PRIOR * u**UNKNOWN_POWER
                P[:, j] = weight * np.expm1(d / NEW_CLASS_TEMPERATURE)
        return P / np.maximum(P.sum(1, keepdims=True), 1e-12)

    def apply(
        self,
        result: CascadeResult,
        s1: StageResult,
        s2: StageResult,
        embedding: np.ndarray,
        rule: DecisionRule,
    ) -> CascadeResult:
        base = base_probabilities(s1, s2)[None]
        E = _unit(np.atleast_2d(embedding) - self.center)
        sims = E @ self.prototypes.T
        if not np.any(sims > self.thresholds):
            return result  # below every class's lowest floor: the base verdict, cheaply
        D = self._gate(sims - self._floors(E), self._raw_similarities(embedding))
        if not np.any(D > 0):
            return result  # nothing taught looks like it: the base verdict
        p = self._from_margins(D, base)[0]
        index = int(np.argmax(p))
        label, score = self.labels[index], float(p[index])
        if label not in self.taught:
            return result  # the evidence only diluted the base verdict: keep it as it was
        chosen = self.bins.get(label) or base_bin(label)
        if score < rule.min_confidence:
            label, chosen = UNCERTAIN, None
        strength = float(np.max(D) / self.temperature)
        return replace(result, label=label, score=score, bin=chosen, taught=round(strength, 3))


def _similarities(E: np.ndarray, R: np.ndarray) -> np.ndarray:
    """``E @ R.T``; for a few items without BLAS, whose threads (started for a 1 x 1280 x 660
    product) cost 6-8 ms per item on a loaded 2-core machine against 0.3 ms in one thread."""
    if len(E) <= 8:
        return np.einsum("ij,kj->ik", E, R)
    return E @ R.T


def _loo_similarities(X: np.ndarray, y: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """(n, classes) each unit-length photo ``X`` against every class's prototype (``sums`` of
    its photos, normalised), its own class's made without it (-1 where it is the class's only
    photo): leave-one-out, for the gates and ``loo_accuracy``."""
    S = X @ _unit(sums).T
    alone = np.bincount(y, minlength=len(sums))[y] <= 1
    S[np.arange(len(X)), y] = np.where(alone, -1.0, np.sum(X * _unit(sums[y] - X), 1))
    return S


def _unknown(base: np.ndarray) -> np.ndarray:
    """(n,) how unknown the base cascade finds each item: 0 when one class has all the
    probability, 1 when it is spread evenly over the base labels."""
    base = np.atleast_2d(base)
    n = base.shape[1]
    return np.clip((1.0 - base.max(1)) / max(1.0 - 1.0 / n, 1e-12), 0.0, 1.0)


def _thresholds(
    prototypes: np.ndarray,
    taught: tuple[str, ...],
    reference: Reference | None,
    E: np.ndarray,
    y: np.ndarray,
) -> np.ndarray:
    out = np.zeros(len(taught))
    if reference is not None and len(reference.labels):
        sims = _similarities(prototypes, reference.embeddings)  # (len(taught), m)
    for k, name in enumerate(taught):
        if reference is not None and len(reference.labels):
            others = sims[k][reference.others(name)]
            out[k] = float(np.quantile(others, REFERENCE_QUANTILE))
        else:  # no reference: anything about as close as the taught photos themselves
            out[k] = float(np.min(E[y == k] @ prototypes[k])) - 0.1
    return out


def photo_files(paths: Iterable[Path]) -> list[Path]:
    """Photos and the photos in folders (not recursing into the folders' sub-folders)."""
    out: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(path)
    return out


def attach(cascade: Cascade, root: Path, create: bool = False) -> SiteProfile:
    """Open the profile in ``root`` and classify with it from the next image on (``--profile``)."""
    profile = SiteProfile.open(root, create=create)
    cascade.use_profile(profile.head(cascade))
    return profile
