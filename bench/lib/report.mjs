// Renders a run (fingerprint + case results) as the Markdown of bench/results/latest.md.
const fixed = (value, digits = 1) => (typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : '-');
const ratio = (a, b) => (a > 0 && b > 0 ? `${(a / b).toFixed(2)}x` : '-');

function table(header, rows) {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function fingerprintSection(run) {
  const f = run.fingerprint;
  return [
    `# maskface benchmarks (${run.mode} run, ${run.startedAt.slice(0, 16).replace('T', ' ')} UTC)`,
    '',
    `- CPU: ${f.cpu} (${f.cpuVendor ?? 'vendor unknown'}, family/model/stepping ${f.cpuFamilyModelStepping ?? 'unknown'}${f.virtualized ? ', under a hypervisor' : ''}), ${f.cores} cores, ${f.memoryGiB} GiB memory, no GPU used`,
    `- ISA extensions: ${f.simd.join(', ') || 'none of AVX2, AVX-512, VNNI, AMX'}${f.virtualized ? ' (as the hypervisor reports them: a virtual CPU\'s model number may not name the real part)' : ''}`,
    `- OS: ${f.os}; Node ${f.node}`,
    `- maskface ${f.maskface} (commit ${f.commit}) over ONNX Runtime ${f.maskfaceOrt}; onnxruntime-node ${f.onnxruntimeNode}; usearch ${f.usearch}; hnswlib-node ${f.hnswlibNode}` +
      (f.human ? `; @vladmandic/human ${f.human} on TensorFlow.js ${f.tfjs}` : ''),
    `- Load average (1/5/15 min): ${run.loadBefore.join(' / ')} before, ${run.loadAfter.join(' / ')} after` +
      ` (per-case 1-min load in the JSON); ${f.cores} cores, so a load above ~${f.cores} means another job shared the CPU`,
    `- CPU time stolen by the hypervisor during the run: ${run.stealPct ?? '?'}% (per case in the tables; this is a VM, and steal`,
    '  makes timings noisy: compare rows of one run, and distrust a row whose steal stands out)',
    `- Each case ran in a fresh Node process; warm-up runs excluded. Raw results: \`${run.jsonFile}\``,
  ].join('\n');
}

function embedSection(results) {
  const embed = results.filter((r) => r.kind === 'embed');
  if (embed.length === 0) return '';
  const models = [...new Set(embed.map((r) => r.model))];
  const ok = (model) => embed.filter((r) => r.model === model && !r.error);
  return models
    .map((model) => (ok(model).some((r) => r.impl === 'onnxruntime-node') || ok(model).length === 0
      ? embedModelSection(model, ok(model))
      : quantizedSection(model, ok(model), ok(model.replace(/-int8$/, '')))))
    .join('\n\n');
}

/** A model only maskface runs (int8 with maskface's ops), against its float32 model in the same run. */
function quantizedSection(model, rows, floatRows) {
  const floatModel = model.replace(/-int8$/, '');
  const keys = [...new Set(rows.map((r) => `${r.batch}/${r.threads}`))];
  const body = keys.map((key) => {
    const [batch, threads] = key.split('/').map(Number);
    const pick = (list, spinning) => list.find((r) => r.batch === batch && r.threads === threads && r.impl === 'maskface' && !!r.spinning === spinning);
    const [q, qs, f, fs] = [pick(rows, false), pick(rows, true), pick(floatRows, false), pick(floatRows, true)];
    return [batch, threads, `${fixed(q?.facesPerS)} (${q ? fixed(q.p50Ms) : '-'} ms)`, fixed(qs?.facesPerS), fixed(f?.facesPerS), fixed(fs?.facesPerS),
      ratio(q?.facesPerS, f?.facesPerS), ratio(qs?.facesPerS, fs?.facesPerS), fixed(q?.loopMaxDelayMs)];
  });
  const rounds = rows[0]?.facesPerSRounds?.length ?? 1;
  return [
    `## Embedding: ${model} against ${floatModel}, maskface, CPU (faces/s${rounds > 1 ? `, ${rounds % 2 === 0 ? 'lower median' : 'median'} of ${rounds} rounds` : ''})`,
    '',
    table(['batch', 'intra-op threads', `${model} (p50)`, 'spinning', `${floatModel} (float32)`, 'spinning', 'int8 / float32', 'int8 / float32, spinning', 'max loop delay ms'], body),
    '',
    `- ${model} runs integer convolutions (uint8 x int8, VNNI where the CPU has it) and maskface::QLinearPRelu, which only`,
    '  maskface\'s runtime has: onnxruntime-node cannot run it, so it is compared with the float32 model in maskface.',
  ].join('\n');
}

function embedModelSection(model, embed) {
  if (embed.length === 0) return `## Embedding: ${model}, CPU\n\nEvery case failed; see the JSON.`;
  const keys = [...new Set(embed.map((r) => `${r.batch}/${r.threads}`))];
  const rows = keys.map((key) => {
    const [batch, threads] = key.split('/').map(Number);
    const at = (r) => r.batch === batch && r.threads === threads;
    const mf = embed.find((r) => at(r) && r.impl === 'maskface' && !r.spinning);
    const mfSpin = embed.find((r) => at(r) && r.impl === 'maskface' && r.spinning);
    const ort = (session) => embed.find((r) => at(r) && r.impl === 'onnxruntime-node' && r.session === session);
    const [ortDefault, ortSame, ortBest] = [ort('default'), ort('maskface'), ort('flush')];
    const rate = (r) => (r ? `${fixed(r.facesPerS)}` : '-');
    return [
      batch,
      threads,
      `${rate(mf)} (${mf ? fixed(mf.p50Ms) : '-'} ms)`,
      rate(mfSpin),
      rate(ortDefault),
      rate(ortSame),
      rate(ortBest),
      ratio(mf?.facesPerS, ortDefault?.facesPerS),
      ratio(mf?.facesPerS, ortSame?.facesPerS),
      ratio(mfSpin?.facesPerS, ortBest?.facesPerS),
      `${fixed(mf?.loopMaxDelayMs)} / ${fixed(mfSpin?.loopMaxDelayMs)} / ${fixed(ortDefault?.loopMaxDelayMs)}`,
      mf ? `${fixed(mf.prePostShare * 100, 2)}%` : '-',
      [mf, mfSpin, ortDefault, ortSame, ortBest].map((r) => r?.stealPct ?? '-').join(' / '),
    ];
  });
  const first = embed[0];
  const rounds = first.facesPerSRounds?.length ?? 1;
  return [
    `## Embedding: ${model}, CPU (faces/s${rounds > 1 ? `, ${rounds % 2 === 0 ? 'lower median' : 'median'} of ${rounds} rounds` : ''})`,
    '',
    table(
      ['batch', 'intra-op threads', 'maskface (p50)', 'maskface, spinning', 'ORT-node defaults', 'ORT-node, maskface\'s settings', 'ORT-node, best settings',
        'maskface / ORT-node defaults', 'maskface / ORT-node, same settings', 'maskface spinning / ORT-node best', 'max loop delay ms (maskface / spinning / ORT-node)',
        'maskface pre+post share', 'steal % (per column)'],
      rows,
    ),
    '',
    '- Same ONNX file (symbolic batch) and the same pixels for both. maskface starts from uint8 HWC RGB pixels and its time',
    '  includes its own preprocessing and L2 normalisation; onnxruntime-node is fed a ready NCHW Float32Array tensor (built',
    '  before timing, so it pays no preprocessing), and its time includes reading the output and L2-normalising it in JS.',
    '- Settings. maskface: its defaults (threads sleep when out of work, denormal floats flushed to zero on the thread that',
    '  runs the network), and with `cpu: { spinning: true }` (threads spin-wait within a run, and stop when it returns).',
    '  onnxruntime-node: its defaults (threads spin, no flush); maskface\'s settings (`allow_spinning = 0`,',
    '  `set_denormal_as_zero = 1`); best settings (`set_denormal_as_zero = 1`, spinning left on), the fastest found for it.',
    '  ONNX Runtime applies `set_denormal_as_zero` to its pool threads and the thread that created the session, which in',
    '  onnxruntime-node is not the thread that runs it. Denormals matter on cores that take microcode assists for them',
    '  (the published MobileFaceNet, and so maskface-mbf-cal, hold denormal weights).',
    '- Latency is per batch call. Max loop delay: largest lateness of a 5 ms libuv timer (perf_hooks.monitorEventLoopDelay)',
    '  during the timed runs; a value near the batch latency means the call blocked the event loop.',
    '- Pre+post share: maskface\'s native preprocess + postprocess time over end-to-end wall time.',
    ...(rounds > 1 ? [`- Each case ran ${rounds} times (one process each, rounds one after the other); faces/s of every round are in the JSON.`] : []),
    ...(first.agreement !== undefined ? [`- Output check: cosine between the two runtimes' embeddings of the same face = ${first.agreement}.`] : []),
  ].join('\n');
}

function searchSection(results, options) {
  const search = results.filter((r) => r.kind === 'search');
  if (search.length === 0) return '';
  const base = search.find((r) => r.impl === 'maskface Gallery' && r.threads === 2 && !r.error) ?? search.find((r) => r.impl === 'maskface Gallery' && !r.error);
  const first = search.find((r) => !r.error && !r.skipped) ?? {};
  const rows = search.map((r) => {
    if (r.error || r.skipped) return [r.impl, r.variant ?? '', r.threads ?? '-', r.skipped ? 'skipped' : 'failed', '-', '-', '-', '-', '-', '-', '-'];
    const build = r.build ? `${fixed(r.build.buildS)} s (${r.build.buildThreads} thr)` : r.buildS !== undefined ? `${fixed(r.buildS, 2)} s (copy)` : '-';
    return [
      r.impl,
      r.variant,
      r.threads,
      r.single ? `${fixed(r.single.qps)} (${r.single.p50Ms !== undefined ? `p50 ${fixed(r.single.p50Ms, 2)} ms, ` : ''}${r.single.queries} q)` : '-',
      r.batch ? `${fixed(r.batch.qps)} (${r.batch.queries} in 1 call)` : '-',
      r.recall === null || r.recall === undefined ? '-' : fixed(r.recall, 4),
      r.single && base?.single ? ratio(r.single.qps, base.single.qps) : '-',
      r.batch && base?.batch ? ratio(r.batch.qps, base.batch.qps) : '-',
      build,
      `${r.loadAtStart?.[0] ?? '-'}`,
      `${r.stealPct ?? '-'}`,
    ];
  });
  const skipped = search.filter((r) => r.skipped).map((r) => `- ${r.impl} skipped: ${r.skipped}`);
  const failed = search.filter((r) => r.error).map((r) => `- ${r.impl} ${r.variant ?? ''} failed: ${r.error}`);
  return [
    `## Search: exact top-${first.k ?? 10} over ${first.n ?? '?'} x ${first.dim ?? '?'} f32, CPU`,
    '',
    table(
      ['implementation', 'variant', 'threads', 'single queries/s', 'batch queries/s', `recall@${first.k ?? 10}`,
        'single vs maskface', 'batch vs maskface', 'build', '1-min load', 'steal %'],
      rows,
    ),
    '',
    '- Ratios are against maskface Gallery with 2 threads (higher = faster than maskface).',
    ...boundNote(search, base),
    `- Data: clustered like face embeddings (1000 centres + Gaussian noise, cosine to centre ~0.78, L2 normalised), seeded;`,
    '  bench/lib/data.mjs follows bench/native/data.h step by step and produced bit-identical vectors to a `-O3` build of it',
    '  (a `-march=native` build differs in the last bit through fused multiply-adds), so the faiss rows see the same data.',
    `- Recall: tie-aware recall@k against a double-precision plain-JS exact scan over the first ${first.recallQueries ?? '?'} queries`,
    '  (a returned row counts when its exact score reaches the k-th best exact score - 1e-5); the lower of single and batch',
    '  is shown. For exact methods it is a check and must be 1.0. faiss computes its own recall over its first 100 queries.',
    '- Single: one call per query, awaited in turn. Batch: one call with all queries, median of 3 calls after a warm-up.',
    '- hnswlib-node searches on one thread and has no batch call (its batch is a loop); its graph is built once and cached,',
    '  and the build time shown is the one measured when it was built. usearch HNSW uses the library defaults.',
    '- This data is easy for HNSW (every query\'s neighbours sit in its own well-separated cluster), so approximate recall',
    '  here is an upper bound: on real embeddings with closer identities, or on uniform random vectors, it is lower.',
    '- usearch 2.25 exactSearch ignores a typed array\'s byteOffset, so single queries are passed as copies.',
    ...skipped,
    ...failed,
    options.faissNote ? `- ${options.faissNote}` : '',
  ].join('\n');
}

/** How close maskface's single queries come to the read bound measured in the same run. */
function boundNote(search, base) {
  const bound = search.find((r) => r.bound && r.single);
  if (!bound || !base?.single) return [];
  return [
    `- Read bound: one pass over the ${bound.n} x ${bound.dim} f32 rows with the same 2 threads and nothing but loads (${bound.variant}),`,
    `  ${fixed(bound.single.qps)} passes/s: no single query can beat it. maskface single queries reach ${fixed((100 * base.single.qps) / bound.single.qps)}% of it.`,
  ];
}

function photoSection(results) {
  const photo = results.filter((r) => r.kind === 'photo');
  if (photo.length === 0) return '';
  const baseOf = (name) =>
    photo.find((r) => r.photo === name && r.impl === 'maskface' && r.model === 'mobilefacenet' && r.detector === 'ultraface-320' && r.mirrorLandmarks && !r.error);
  const rows = photo.map((r) => {
    if (r.error) return [r.photo ?? '-', r.impl, r.variant ?? '', r.threads ?? '-', 'failed', '-', '-', '-', '-', '-', `${r.loadAtStart?.[0] ?? '-'}`, `${r.stealPct ?? '-'}`];
    const base = baseOf(r.photo);
    return [
      r.photo,
      r.impl,
      r.variant,
      r.threads,
      `${r.facesFound} / ${r.expectedFaces}`,
      `${fixed(r.p50Ms)} / ${fixed(r.p95Ms)}`,
      fixed(r.photosPerS, 2),
      base ? ratio(r.photosPerS, base.photosPerS) : '-',
      `${fixed(r.loopMaxDelayMs)} / ${fixed(r.loopP99DelayMs)}`,
      r.jpeg ? `${fixed(r.jpeg.p50Ms)} ms, ${fixed(r.jpeg.photosPerS, 2)}/s` : '-',
      `${r.loadAtStart?.[0] ?? '-'}`,
      `${r.stealPct ?? '-'}`,
    ];
  });
  const agreement = photo
    .filter((r) => r.agreementWithOrtNode)
    .map((r) => `${r.photo} (${r.variant}): min ${fixed(r.agreementWithOrtNode.min, 4)}, mean ${fixed(r.agreementWithOrtNode.mean, 4)} over ${r.agreementWithOrtNode.matched} faces`);
  const human = photo.find((r) => r.impl === 'human' && !r.error);
  const failed = photo.filter((r) => r.error).map((r) => `- ${r.photo ?? ''} ${r.impl} ${r.variant ?? ''} failed: ${r.error}`);
  return [
    '## Photo: a 1280x720 photo in, an embedding of every face out, CPU',
    '',
    table(
      ['photo', 'implementation', 'variant', 'threads', 'faces found / in photo', 'p50 / p95 ms per photo', 'photos/s',
        'vs maskface (ultraface-320, mobilefacenet)', 'loop delay max / p99 ms', 'maskface from JPEG bytes: p50, photos/s', '1-min load', 'steal %'],
      rows,
    ),
    '',
    '- Photos (bench/lib/photos.mjs, built from deepface test-set portraits, cached in bench/.cache): one-face = one portrait',
    '  scaled to fit; five-faces = five people, each scaled to 250 px wide, side by side on grey. Each case decodes the JPEG',
    '  once with sharp before timing and times the decoded RGB pixels, so every implementation gets the same pixels.',
    '  maskface is timed once more given the JPEG bytes (its time then includes sharp\'s decode): last-but-two column.',
    '- maskface: `recognizer.embedFaces(pixels, { detector })`, one native call off the event loop (detection, 68 landmarks',
    '  per face on the crop and its mirror unless mirrorLandmarks is off, alignment from the full photo, one network run for',
    '  all faces). Its first rows run the peer\'s models (UltraFace-320, landmark68, MobileFaceNet); "the defaults" row is',
    '  maskface\'s own pipeline (BlazeFace-256, maskface-mbf-cal with its region maps and automatic alignment).',
    '  onnxruntime-node: the same three ONNX files as the first rows with the pre- and post-processing in plain JS',
    '  (stretch-resize, NMS, one landmark run per face, Umeyama similarity, bilinear warp, one embedding run, L2 norm), once',
    '  with onnxruntime-node\'s defaults and once with maskface\'s session settings (no spinning, denormals as zero).',
    '  human: @vladmandic/human (BlazeFace, face mesh, faceres 1024-d descriptor; everything else off, frame caching off) on',
    `  TensorFlow.js${human ? ` ${human.backend} (${human.backendNote})` : ''}; its models come from its npm package.`,
    '- Ratios: photos/s against maskface with the peer\'s models (UltraFace-320, MobileFaceNet) on the same photo (higher = faster than maskface).',
    '- Warm-up runs excluded; then timed runs until at least the minimum count and duration. Between runs the event loop',
    '  gets one turn (untimed), so a call that never leaves the main thread shows as a stall as long as the call.',
    '- Loop delay: lateness of a 5 ms libuv timer during the timed runs (perf_hooks.monitorEventLoopDelay; raw-pixel runs for',
    '  maskface), the largest and the 99th percentile. A max near the photo latency means the call blocked the event loop; a',
    '  max far above a small p99 is one late wake-up (on 2 cores, 2 intra-op threads and the main thread compete for them).',
    ...(agreement.length
      ? ['- Output check: cosine between maskface\'s and onnxruntime-node\'s MobileFaceNet embeddings of the same face (faces matched',
          '  by box centre; each aligns with its own landmarks, so ~0.97-0.99 is expected, not 1.0): ' + agreement.join('; ') + '.']
      : []),
    ...failed,
  ].join('\n');
}

export function renderMarkdown(run, options = {}) {
  return [fingerprintSection(run), embedSection(run.results), searchSection(run.results, options), photoSection(run.results)].filter(Boolean).join('\n\n') + '\n';
}
