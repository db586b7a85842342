#include "addon/detector_wrap.h"

#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "addon/args.h"
#include "addon/errors.h"
#include "addon/promise_worker.h"
#include "addon/session_wrap.h"
#include "core/image_pyramid.h"
#include "core/vector_math.h"

namespace maskface::addon {
namespace {

// Handed from LoadWorker::Result to the constructor, so JS cannot construct a Detector itself.
thread_local std::shared_ptr<ort::FaceDetector> pending_detector;

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, Napi::Uint8Array detector, Napi::Uint8Array landmarks, int threads)
      : PromiseWorker(env, "maskface:loadDetector"),
        detector_ref_(Napi::Persistent(detector)),
        landmarks_ref_(Napi::Persistent(landmarks)),
        detector_bytes_(detector.Data()),
        detector_size_(detector.ByteLength()),
        landmark_bytes_(landmarks.Data()),
        landmark_size_(landmarks.ByteLength()),
        threads_(threads) {}

 protected:
  void Compute() override {
    result_ = ort::FaceDetector::Create(detector_bytes_, detector_size_, landmark_bytes_, landmark_size_, threads_);
  }

  Napi::Value Result(Napi::Env env) override {
    pending_detector = std::move(result_);
    Napi::Object wrap = InstanceData::Get(env)->detector_class.New({});
    pending_detector.reset();
    return wrap;
  }

 private:
  Napi::Reference<Napi::Uint8Array> detector_ref_, landmarks_ref_;  // alive while ORT parses them
  const uint8_t* detector_bytes_;
  size_t detector_size_;
  const uint8_t* landmark_bytes_;
  size_t landmark_size_;
  int threads_;
  std::unique_ptr<ort::FaceDetector> result_;
};

// What detect() embeds with, when it is given a session.
struct EmbedRequest {
  std::shared_ptr<const ort::InferenceSession> session;
  std::shared_ptr<const Preprocessing> preprocessing;
  // 5: eyes, nose tip, mouth corners; 3: eyes and nose tip only; 4: the detector's keypoints
  // (BlazeFace: eyes, nose tip, mouth centre); 0 (auto): 5, then 3 for the faces whose mean
  // P[mask] over `mask_cells` of the region map reaches `mask_threshold` (under a mask the
  // mouth corners are guesses).
  int alignment_points = 5;
  bool want_regions = false;
  bool flip = false;  // also run each face's mirror image and merge the two embeddings
  std::vector<uint32_t> mask_cells;  // cells of one region plane (lib/ chooses them: the lower face)
  int mask_plane = 1;
  float mask_threshold = 0.5f;
};

class DetectWorker : public PromiseWorker {
 public:
  DetectWorker(Napi::Env env, Napi::Object owner, std::shared_ptr<const ort::FaceDetector> detector, ImageView image,
               ort::DetectOptions options, EmbedRequest embed)
      : PromiseWorker(env, "maskface:detect"),
        owner_(Napi::Persistent(owner)),
        detector_(std::move(detector)),
        pixels_(image.data, image.data + image.row_stride * image.height),
        image_(image),
        options_(options),
        embed_(std::move(embed)) {
    image_.data = pixels_.data();
  }

 protected:
  void Compute() override {
    auto start = Clock::now();
    ImagePyramid photo(image_);
    faces_ = detector_->Detect(photo, options_);
    detect_ms_ = MillisecondsSince(start);
    if (embed_.session && !faces_.empty()) {
      start = Clock::now();
      Embed(photo);
      embed_ms_ = MillisecondsSince(start);
    }
  }

  Napi::Value Result(Napi::Env env) override {
    const size_t n = faces_.size();
    auto boxes = Napi::Float32Array::New(env, n * 5);
    auto landmarks5 = Napi::Float64Array::New(env, n * 10);
    auto landmarks68 = Napi::Float32Array::New(env, n * 136);
    auto quality = Napi::Float64Array::New(env, n * 5);
    for (size_t i = 0; i < n; ++i) {
      const ort::DetectedFace& f = faces_[i];
      const float box[5] = {f.box.x1, f.box.y1, f.box.x2, f.box.y2, f.box.score};
      std::copy(box, box + 5, boxes.Data() + i * 5);
      std::copy(f.landmarks5, f.landmarks5 + 10, landmarks5.Data() + i * 10);
      std::copy(f.landmarks68, f.landmarks68 + 136, landmarks68.Data() + i * 136);
      const double q[5] = {f.landmark_disagreement, f.pose.yaw, f.pose.roll, f.sharpness, f.padded ? 1.0 : 0.0};
      std::copy(q, q + 5, quality.Data() + i * 5);
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("count", static_cast<double>(n));
    result.Set("boxes", boxes);
    result.Set("landmarks5", landmarks5);
    result.Set("landmarks68", landmarks68);
    result.Set("quality", quality);
    if (n > 0 && faces_[0].has_keypoints) {
      auto keypoints = Napi::Float32Array::New(env, n * 12);
      for (size_t i = 0; i < n; ++i) std::copy(faces_[i].keypoints, faces_[i].keypoints + 12, keypoints.Data() + i * 12);
      result.Set("keypoints", keypoints);
    }
    if (!embeddings_.empty()) {
      auto embeddings = Napi::Float32Array::New(env, embeddings_.size());
      std::copy(embeddings_.begin(), embeddings_.end(), embeddings.Data());
      result.Set("embeddings", embeddings);
    }
    if (!points_.empty()) {
      auto points = Napi::Uint8Array::New(env, points_.size());
      std::copy(points_.begin(), points_.end(), points.Data());
      result.Set("alignmentPoints", points);
    }
    if (!regions_.empty()) {
      auto regions = Napi::Float32Array::New(env, regions_.size());
      std::copy(regions_.begin(), regions_.end(), regions.Data());
      result.Set("regions", regions);
    }
    Napi::Object timing = Napi::Object::New(env);
    timing.Set("detectMs", detect_ms_);
    timing.Set("embedMs", embed_ms_);
    result.Set("timing", timing);
    return result;
  }

 private:
  // Aligns every face from the photo (its pyramid level nearest the crop's scale) onto the
  // session's template with the chosen points, runs the batch, normalises the embeddings.
  void Embed(ImagePyramid& photo) {
    const auto& d = embed_.session->description();
    const Preprocessing& pre = *embed_.preprocessing;
    const size_t n = faces_.size();
    const size_t dim = static_cast<size_t>(d.embedding_dim);
    const bool has_regions = d.regions_output >= 0;
    const size_t region_item = has_regions ? 3 * static_cast<size_t>(d.regions_height) * d.regions_width : 0;
    if (pre.template_points.size() != 10) throw Error(ErrorCode::kInvalidArgument, "the recognizer's landmark template must have 5 points");
    const bool automatic = embed_.alignment_points == 0;
    if (automatic && (!has_regions || embed_.mask_cells.empty())) {
      throw Error(ErrorCode::kInvalidArgument, "automatic alignment needs a model with region maps");
    }
    points_.assign(n, automatic ? 5 : embed_.alignment_points);
    embeddings_.resize(n * dim);
    if (has_regions && (embed_.want_regions || automatic)) regions_.resize(n * region_item);
    std::vector<size_t> all(n);
    for (size_t i = 0; i < n; ++i) all[i] = i;
    Run(photo, all);
    if (automatic) {
      const size_t plane = static_cast<size_t>(d.regions_height) * d.regions_width;
      std::vector<size_t> masked;
      for (size_t i = 0; i < n; ++i) {
        const float* mask = regions_.data() + i * region_item + embed_.mask_plane * plane;
        double sum = 0;
        for (uint32_t cell : embed_.mask_cells) sum += mask[cell];
        if (sum / embed_.mask_cells.size() >= embed_.mask_threshold) {
          points_[i] = 3;
          masked.push_back(i);
        }
      }
      if (!masked.empty()) Run(photo, masked);
    }
    if (!embed_.want_regions) regions_.clear();
  }

  // One network run for the faces `which` (indices into faces_), each aligned with points_[i]
  // points; writes their rows of embeddings_ (normalised) and regions_.
  void Run(ImagePyramid& photo, const std::vector<size_t>& which) {
    const auto& d = embed_.session->description();
    const Preprocessing& pre = *embed_.preprocessing;
    const size_t item = static_cast<size_t>(pre.spec.channels) * pre.spec.height * pre.spec.width;
    const size_t dim = static_cast<size_t>(d.embedding_dim);
    const size_t region_item = regions_.empty() ? 0 : regions_.size() / faces_.size();
    const size_t m = which.size();
    const size_t items = embed_.flip ? 2 * m : m;  // mirror images are items m..2m-1
    std::vector<float> input(items * item), embeddings(items * dim), regions(items * region_item);
    // The template with the mouth centre in place of the left mouth corner, for keypoints.
    const double* t = pre.template_points.data();
    const double keypoint_template[8] = {t[0], t[1], t[2], t[3], t[4], t[5], (t[6] + t[8]) / 2, (t[7] + t[9]) / 2};
    for (size_t k = 0; k < m; ++k) {
      const size_t i = which[k];
      const bool keypoints = points_[i] == 4;
      double keypoint_points[8];
      if (keypoints) {
        if (!faces_[i].has_keypoints) throw Error(ErrorCode::kInvalidArgument, "alignment on keypoints needs a detector that gives them (BlazeFace)");
        std::copy(faces_[i].keypoints, faces_[i].keypoints + 8, keypoint_points);
      }
      Affine to_template, crop_to_image;
      if (!EstimateSimilarity(keypoints ? keypoint_points : faces_[i].landmarks5, keypoints ? keypoint_template : t, points_[i], &to_template) ||
          !InvertAffine(to_template, &crop_to_image)) {
        throw Error(ErrorCode::kInference, "face " + std::to_string(i) + ": its landmarks are degenerate");
      }
      const auto source = photo.For(crop_to_image);
      WarpToTensor(source.image, source.out_to_src, pre.spec, input.data() + k * item);
      if (embed_.flip) {
        WarpToTensor(source.image, MirrorOutput(source.out_to_src, pre.spec.width), pre.spec, input.data() + (m + k) * item);
      }
    }
    embed_.session->Run(input.data(), static_cast<int64_t>(items), embeddings.data(), region_item ? regions.data() : nullptr);
    for (size_t k = 0; k < items; ++k) {
      float* row = embeddings.data() + k * dim;
      if (!AllFinite(row, dim) || !L2Normalize(row, dim)) {
        throw Error(ErrorCode::kInference, "the model produced a non-finite or all-zero embedding for face " +
                                               std::to_string(which[k % m]) + (k < m ? "" : " (mirror image)"));
      }
    }
    if (embed_.flip && !MergeMirroredRows(embeddings.data(), m, dim)) {
      throw Error(ErrorCode::kInference, "a face's embedding and its mirror image's cancel out (sum zero)");
    }
    for (size_t k = 0; k < m; ++k) {
      const size_t i = which[k];
      const float* row = embeddings.data() + k * dim;
      std::copy(row, row + dim, embeddings_.data() + i * dim);
      std::copy(regions.data() + k * region_item, regions.data() + (k + 1) * region_item, regions_.data() + i * region_item);
    }
  }

  Napi::ObjectReference owner_;  // keeps the Detector wrapper alive while the run is in flight
  std::shared_ptr<const ort::FaceDetector> detector_;
  std::vector<uint8_t> pixels_;  // copied: callers may reuse their buffer as soon as detect() returns
  ImageView image_;
  ort::DetectOptions options_;
  EmbedRequest embed_;
  std::vector<ort::DetectedFace> faces_;
  std::vector<float> embeddings_, regions_;
  std::vector<int> points_;  // landmarks each face was aligned with (5 or 3)
  double detect_ms_ = 0, embed_ms_ = 0;
};

}  // namespace

Napi::Function DetectorWrap::DefineClass(Napi::Env env) {
  return ObjectWrap<DetectorWrap>::DefineClass(env, "Detector",
                                               {
                                                   InstanceMethod<&DetectorWrap::Describe>("describe"),
                                                   InstanceMethod<&DetectorWrap::Detect>("detect"),
                                                   InstanceMethod<&DetectorWrap::Dispose>("dispose"),
                                               });
}

Napi::Value DetectorWrap::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto detector = TypedArrayArg<uint8_t>(env, info[0], "detector model bytes");
    auto landmarks = TypedArrayArg<uint8_t>(env, info[1], "landmark model bytes");
    Napi::Object options = ObjectArg(env, info[2], "options");
    const int threads = static_cast<int>(IntegerArg(env, options.Get("intraOpThreads"), "intraOpThreads", 1, 1024));
    return (new LoadWorker(env, detector, landmarks, threads))->Start();
  });
}

DetectorWrap::DetectorWrap(const Napi::CallbackInfo& info)
    : ObjectWrap<DetectorWrap>(info), registration_(info.Env(), this) {
  if (!pending_detector) {
    throw MakeError(info.Env(), JsCode::kInvalidArgument, "Detector cannot be constructed directly; use loadDetector()");
  }
  detector_ = std::move(pending_detector);
}

void DetectorWrap::Release() { detector_.reset(); }

Napi::Value DetectorWrap::Describe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!detector_) throw MakeError(env, JsCode::kDisposed, "the detector has been disposed");
  Napi::Object out = Napi::Object::New(env);
  out.Set("inputWidth", detector_->input_width());
  out.Set("inputHeight", detector_->input_height());
  out.Set("kind", detector_->kind());
  return out;
}

// detect(image, {minScore, nmsIoU, maxFaces, minFaceSize, retryPad, mirrorLandmarks},
//        embed: {session, alignmentPoints, wantRegions, flip?, maskCells?, maskPlane?, maskThreshold?} | null)
//   -> Promise<{count, boxes, landmarks5, landmarks68, quality, embeddings?, regions?, timing}>
Napi::Value DetectorWrap::Detect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (!detector_) throw MakeError(env, JsCode::kDisposed, "the detector has been disposed");
    const ImageView image = ImageArg(env, info[0], "image");
    Napi::Object o = ObjectArg(env, info[1], "options");
    ort::DetectOptions options;
    auto unit = [&](const char* key) {
      const double v = NumberArg(env, o.Get(key), key);
      if (v < 0 || v > 1) ThrowInvalid(env, std::string(key) + " must be in [0, 1]");
      return static_cast<float>(v);
    };
    options.min_score = unit("minScore");
    options.nms_iou = unit("nmsIoU");
    options.max_faces = static_cast<size_t>(IntegerArg(env, o.Get("maxFaces"), "maxFaces", 0, 1 << 20));
    options.min_face_size = static_cast<float>(NumberArg(env, o.Get("minFaceSize"), "minFaceSize"));
    options.retry_pad = static_cast<float>(NumberArg(env, o.Get("retryPad"), "retryPad"));
    if (options.min_face_size < 0 || options.retry_pad < 0 || options.retry_pad > 4) {
      ThrowInvalid(env, "minFaceSize must be >= 0 and retryPad in [0, 4]");
    }
    options.mirror_landmarks = o.Get("mirrorLandmarks").ToBoolean();
    EmbedRequest embed;
    if (!info[2].IsNull() && !info[2].IsUndefined()) {
      Napi::Object e = ObjectArg(env, info[2], "embed");
      SessionWrap* session = SessionWrap::FromValue(env, e.Get("session"), "embed.session");
      embed.session = session->Live(env);
      embed.preprocessing = session->LivePreprocessing(env);
      embed.alignment_points = static_cast<int>(IntegerArg(env, e.Get("alignmentPoints"), "alignmentPoints", 0, 5));
      if (embed.alignment_points == 1 || embed.alignment_points == 2) ThrowInvalid(env, "alignmentPoints must be 0 (auto), 3, 4 or 5");
      embed.want_regions = e.Get("wantRegions").ToBoolean();
      embed.flip = e.Get("flip").ToBoolean();
      if (embed.alignment_points == 0) {
        auto cells = TypedArrayArg<uint32_t>(env, e.Get("maskCells"), "maskCells");
        const auto& d = embed.session->description();
        const uint32_t plane = static_cast<uint32_t>(d.regions_height * d.regions_width);
        for (size_t i = 0; i < cells.ElementLength(); ++i) {
          if (cells[i] >= plane) ThrowInvalid(env, "maskCells has a cell outside the region map");
        }
        embed.mask_cells.assign(cells.Data(), cells.Data() + cells.ElementLength());
        embed.mask_plane = static_cast<int>(IntegerArg(env, e.Get("maskPlane"), "maskPlane", 0, 2));
        embed.mask_threshold = static_cast<float>(NumberArg(env, e.Get("maskThreshold"), "maskThreshold"));
      }
    }
    return (new DetectWorker(env, Value(), detector_, image, options, std::move(embed)))->Start();
  });
}

Napi::Value DetectorWrap::Dispose(const Napi::CallbackInfo& info) {
  // In-flight runs hold their own reference to the detector; it is freed when the last one ends.
  Release();
  return info.Env().Undefined();
}

}  // namespace maskface::addon
