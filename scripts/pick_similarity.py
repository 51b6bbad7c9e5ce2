# How close must two questions be for one customer's pick to answer the other? Nearest-neighbour
# cosines of StackFAQ's dev paraphrases (the even ones; the eval tests on the odd ones), embedded as
# frontdesk embeds them (all-MiniLM-L6-v2, mean of the last layer, unit length). Chose
# bot.learned_similarity = 0.80 (docs/EVALUATION.md, "The bot learns from the picks").
# Needs torch + transformers (the venv of scripts/train_reranker.py). Usage: python3 scripts/pick_similarity.py [DATA_DIR]
import json, os, sys, numpy as np, torch
from transformers import AutoTokenizer, AutoModel
d=json.load(open(os.path.join(sys.argv[1] if len(sys.argv) > 1 else '../shared/data', 'stackfaq/stackExchange-FAQ.json')))
qs=[];ent=[]
for i,e in enumerate(d['root']['qapair']):
    r=[q for q in (e.get('rephr') or []) if isinstance(q,str) and q.strip() not in ('*','')]
    for j,q in enumerate(r):
        if j%2==0: qs.append(q); ent.append(i)
print(len(qs), len(set(ent)))
R=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
tok=AutoTokenizer.from_pretrained(f'{R}/models/all-MiniLM-L6-v2'); mod=AutoModel.from_pretrained(f'{R}/models/all-MiniLM-L6-v2'); mod.eval(); torch.set_num_threads(2)
E=[]
for i in range(0,len(qs),64):
    b=tok(qs[i:i+64],padding=True,truncation=True,max_length=128,return_tensors='pt')
    with torch.no_grad(): h=mod(**b).last_hidden_state
    m=b['attention_mask'].unsqueeze(-1).float(); E.append(torch.nn.functional.normalize((h*m).sum(1)/m.sum(1),dim=-1))
E=torch.cat(E).numpy(); ent=np.array(ent)
S=E@E.T; np.fill_diagonal(S,-1)
same=ent[:,None]==ent[None,:]
pos=np.where(same,S,-1).max(1); neg=np.where(~same,S,-1).max(1)
for t in [0.7,0.75,0.8,0.82,0.85,0.88,0.9,0.92,0.95]:
    print(f'bar {t}: queries whose nearest other-entry paraphrase reaches it {np.mean(neg>=t)*100:.2f}%  | with a same-entry paraphrase reaching it {np.mean(pos>=t)*100:.1f}%  | pairs other-entry above {np.mean(S[~same]>=t)*100:.4f}%')
