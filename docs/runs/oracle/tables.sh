# a folder whose cells name the two arms apart (vp_tables keys cells by variant name)
R=/work/scratch/runs/oracle; C=$R/combined
rm -rf $C && mkdir -p $C/cells
for d in $R/priv/cells/action_only__*; do n=$(basename $d); ln -s $d $C/cells/${n/action_only/action_only_privileged}; done
for d in $R/proprio/cells/action_only__*; do ln -s $d $C/cells/$(basename $d); done
cd /work/main && for D in 5 2; do .venv/bin/python scripts/vp_tables.py --study $C --demos $D; echo; done
.venv/bin/python scripts/vp_tables.py --study $C --pairs action_only_privileged:action_only --pair_demos 2,5 --pair_plot /work/main/docs/media/oracle_state_mw5.png
