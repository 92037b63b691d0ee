import onnxruntime as ort, numpy as np, json, sys, collections, time, os
path=sys.argv[1]
so=ort.SessionOptions(); so.enable_profiling=True; so.intra_op_num_threads=2
so.add_session_config_entry("session.disable_quant_qdq","1")
s=ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
L=30; past=128
feeds={'input_ids':np.array([[5]],np.int64),'attention_mask':np.ones((1,past+1),np.int64),'position_ids':np.array([[past]],np.int64)}
for l in range(L):
    for kv in ['key','value']:
        feeds[f'past_key_values.{l}.{kv}']=(np.random.randn(1,3,past,64)*0.5).astype(np.float16)
for _ in range(5): s.run(None,feeds)
t=time.time()
for _ in range(20): s.run(None,feeds)
dt=(time.time()-t)/20
p=s.end_profiling()
ev=json.load(open(p)); os.remove(p)
agg=collections.Counter(); cnt=collections.Counter()
for e in ev:
    if e.get('cat')=='Node' and e['name'].endswith('_kernel_time'):
        op=e['args'].get('op_name'); agg[op]+=e['dur']; cnt[op]+=1
runs=25
print(f"{path}: {dt*1e3:.2f} ms/step")
for op,d in agg.most_common(14): print(f"  {op:22s} {d/runs/1e3:7.3f} ms/step  {cnt[op]/runs:.0f} nodes")
