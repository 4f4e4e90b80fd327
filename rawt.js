const fs=require('fs'),path=require('path'),os=require('os');
const { createOnnxSession, optimizedModelPath, runSession } = require('./dist/src/engine/onnx-runtime');
(async()=>{
  const cache='/work/runs/feat/resnet50/.onnx-cache';
  const exported=path.join(cache, fs.readdirSync(cache).find((f)=>/^features-avg-[0-9a-f]+\.onnx$/.test(f)));
  const threads=os.availableParallelism();
  let t=process.hrtime.bigint();
  const { session } = await createOnnxSession(exported,{threads, optimizedPath: optimizedModelPath(exported,threads), log:null});
  console.log('create', Number(process.hrtime.bigint()-t)/1e6);
  const input=new Float32Array(16*224*224*3).map((_,i)=>((i*7919)%255)-128);
  for(let r=0;r<5;r++){t=process.hrtime.bigint(); await runSession(session,input,[16,224,224,3]); console.log('run',r,Number(process.hrtime.bigint()-t)/1e6);}
})();
